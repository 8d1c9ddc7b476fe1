"""callcenter: an open-source call-center engine that drives Asterisk over ARI and AMI."""

__version__ = "0.1.0"
