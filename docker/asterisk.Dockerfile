# Asterisk 22 (Debian sid's package) with the engine's reference configuration.
# Build from the repository root: docker build -f docker/asterisk.Dockerfile -t callcenter-asterisk .
FROM debian:sid-slim

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      asterisk asterisk-modules asterisk-core-sounds-en-gsm asterisk-moh-opsound-gsm \
 && rm -rf /var/lib/apt/lists/* \
 && mv /etc/asterisk /etc/asterisk.dist && mkdir /etc/asterisk

COPY asterisk-conf/ /etc/asterisk/
COPY dialplan/ /etc/asterisk/
RUN mkdir -p /var/spool/asterisk/recording \
 && chown -R asterisk:asterisk /etc/asterisk /var/lib/asterisk /var/log/asterisk /var/spool/asterisk /run/asterisk

CMD ["asterisk", "-f", "-U", "asterisk", "-G", "asterisk"]
