#!/usr/bin/env python3
"""Throwaway test stack for the call-center engine: PostgreSQL and Asterisk 22 on loopback.

    python3 tools/stack.py deps     install missing Debian packages (root)
    python3 tools/stack.py up       start PostgreSQL and Asterisk, write .run/stack.env
    python3 tools/stack.py down     stop both (the rootfs cache and the database stay)
    python3 tools/stack.py status   say what runs; exit 0 when both answer
    python3 tools/stack.py env      print the path of .run/stack.env

Standard library only, for the system python3, run as root on Debian.

State lives outside the repo (which may sit in a directory the postgres user
cannot enter), in ${CALLCENTER_STACK_DIR:-/var/tmp/callcenter-stack/<hash of the
repo path>}; only .run/ (stack.env, passwords, pid, Asterisk's log) is in the repo.

PostgreSQL: the server named by CALLCENTER_DSN if set, else a cluster of Debian's
server in STACK_DIR/pg.

Asterisk: the `asterisk` on PATH with a private config/run tree in STACK_DIR/asterisk
if there is one, else Debian sid's Asterisk in a chroot built once with mmdebstrap
(from the machine's own Debian mirror, or CALLCENTER_DEBIAN_MIRROR) and cached in
${CALLCENTER_CACHE:-/var/cache/callcenter}/asterisk-rootfs. Its configuration is
asterisk-conf/ and dialplan/ (the deploy reference) with the stack's ports,
addresses and passwords written over it.

Ports (environment variables of the same names override them), all on 127.0.0.1:
CALLCENTER_PG_PORT 25432, ASTERISK_SIP_PORT 25060 (UDP), ASTERISK_HTTP_PORT 28088
(ARI), ASTERISK_AMI_PORT 25038, RTP 30000-30999, and ASTERISK_CARRIER_SIP_PORT 25070
where outbound calls to the carrier trunk are sent (a test's sipp answers there).

Test agent phones (the stack only, never the deploy reference): PJSIP endpoints
agent9001 ... agent9008 from the agent-phone templates, with no authentication,
known by the From user (so a sipp on 127.0.0.1 calling as agent9001 lands in
[from-agents]) and a static contact sip:agent900N@127.0.0.1:<base + N> where a
test's sipp answers; base is CALLCENTER_AGENT_PORT_BASE, default 26000. They are
generated into pjsip_stack_agents.conf, which the stack's pjsip.conf #includes.
.run/stack.env names them (ASTERISK_AGENT_ENDPOINTS, ASTERISK_AGENT_PORT_BASE).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import fcntl
import glob
import hashlib
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path, PurePosixPath

REPO = Path(__file__).resolve().parent.parent
RUN_DIR = REPO / ".run"
STACK_ENV = RUN_DIR / "stack.env"
CREDENTIALS = RUN_DIR / "credentials.json"
ASTERISK_PID = RUN_DIR / "asterisk.pid"
ASTERISK_LOG = RUN_DIR / "asterisk.log"

STATE_DIR = Path(
    os.environ.get("CALLCENTER_STACK_DIR")
    or "/var/tmp/callcenter-stack/" + hashlib.sha256(str(REPO).encode()).hexdigest()[:12]
)
PG_DATA = STATE_DIR / "pg"
PG_LOG = PG_DATA / "server.log"
PRIVATE_ASTERISK = STATE_DIR / "asterisk"  # config/run tree when asterisk comes from PATH

CACHE_DIR = Path(os.environ.get("CALLCENTER_CACHE") or "/var/cache/callcenter")
ROOTFS = CACHE_DIR / "asterisk-rootfs"
ROOTFS_RECIPE = ".callcenter-recipe"  # file in the rootfs naming the packages it was built with
ROOTFS_PACKAGES = (
    "asterisk",
    "asterisk-modules",
    "asterisk-core-sounds-en-gsm",
    "asterisk-moh-opsound-gsm",  # files for the "default" hold music class
)

# docker-compose only checks that docker/compose.yaml parses (no Docker engine runs here);
# chromium + chromium-driver: the wallboard's headless-browser test; baresip: the real softphone
# of tests/integration/test_softphone.py (without recommends: its core, no GUI or video).
DEBIAN_PACKAGES = ("postgresql", "sip-tester", "mmdebstrap", "ca-certificates", "docker-compose",
                   "chromium", "chromium-driver", "baresip")
DEBIAN_SUITES = {
    "oldstable", "stable", "testing", "unstable",
    "buster", "bullseye", "bookworm", "trixie", "forky", "duke", "sid",
}

DB_NAME = "callcenter"
ARI_USER = AMI_USER = "callcenter"  # the users of asterisk-conf/ari.conf and manager.conf
SIP_TRANSPORT = "transport-udp"
AGENT_COUNT = 8  # test agent endpoints agent9001 ... agent9008
AGENTS_CONF = "pjsip_stack_agents.conf"  # generated, #included by the stack's pjsip.conf
RTP_RANGE = (30000, 30999)
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class StackError(Exception):
    """A step failed; the message says which and what to look at."""


def say(message: str) -> None:
    print(f"stack: {message}", file=sys.stderr, flush=True)


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path} cannot be read)"
    return f"--- last lines of {path} ---\n" + "\n".join(text.splitlines()[-lines:])


def run(cmd: list[str], *, check: bool = True, timeout: float | None = 120, **kwargs) -> subprocess.CompletedProcess:
    """Run a command, capturing its output; a failure raises StackError with that output."""
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired as exc:
        raise StackError(f"{shlex.join(cmd)} timed out after {timeout} s") from exc
    if check and result.returncode != 0:
        raise StackError(
            f"{shlex.join(cmd)} exited {result.returncode}\n{result.stdout}{result.stderr}".rstrip()
        )
    return result


@dataclasses.dataclass(frozen=True)
class Ports:
    pg: int
    sip: int
    http: int
    ami: int
    carrier: int
    agent_base: int  # test agent agent900N answers on agent_base + N

    @classmethod
    def from_env(cls) -> Ports:
        def port(name: str, default: int) -> int:
            value = os.environ.get(name) or str(default)
            if not value.isdigit() or not 0 < int(value) < 65536:
                raise StackError(f"{name}={value!r} is not a port number")
            return int(value)

        return cls(
            pg=port("CALLCENTER_PG_PORT", 25432),
            sip=port("ASTERISK_SIP_PORT", 25060),
            http=port("ASTERISK_HTTP_PORT", 28088),
            ami=port("ASTERISK_AMI_PORT", 25038),
            carrier=port("ASTERISK_CARRIER_SIP_PORT", 25070),
            agent_base=agent_port_base(),
        )


def agent_port_base() -> int:
    value = os.environ.get("CALLCENTER_AGENT_PORT_BASE") or "26000"
    if not value.isdigit() or int(value) + AGENT_COUNT >= 65536:
        raise StackError(f"CALLCENTER_AGENT_PORT_BASE={value!r}: the agent ports {value}+1 ... "
                         f"{value}+{AGENT_COUNT} must be port numbers")
    return int(value)


def stack_agents(ports: Ports) -> list[tuple[str, int]]:
    """(endpoint name, sipp port) of each test agent: agent9001 answers on base + 1, and so on."""
    return [(f"agent{9000 + i}", ports.agent_base + i) for i in range(1, AGENT_COUNT + 1)]


@dataclasses.dataclass(frozen=True)
class Credentials:
    ari_password: str
    ami_password: str


def load_credentials(create: bool) -> Credentials | None:
    """The stack's passwords: made at the first `up`, then read from .run/ so reruns keep them."""
    if CREDENTIALS.exists():
        return Credentials(**json.loads(CREDENTIALS.read_text()))
    if not create:
        return None
    creds = Credentials(ari_password=secrets.token_urlsafe(18), ami_password=secrets.token_urlsafe(18))
    ensure_run_dir()
    fd = os.open(CREDENTIALS, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(dataclasses.asdict(creds), f)
    return creds


def ensure_run_dir() -> None:
    RUN_DIR.mkdir(exist_ok=True)
    ignore = RUN_DIR / ".gitignore"  # keeps generated state out of git without touching the repo's own files
    if not ignore.exists():
        ignore.write_text("*\n")


# ------------------------------------------------------------------ deps


def cmd_deps() -> None:
    missing = [pkg for pkg in DEBIAN_PACKAGES if not dpkg_installed(pkg)]
    if not missing:
        return
    say(f"installing {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-qq"], env=env, timeout=600)
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env, timeout=1800)


def dpkg_installed(package: str) -> bool:
    result = run(["dpkg-query", "-W", "-f=${db:Status-Status}", package], check=False)
    return result.returncode == 0 and result.stdout.strip() == "installed"


# ------------------------------------------------------------ config files


def override_ini(path: Path, section: str, key: str, value: str) -> None:
    """Set `key` to `value` inside `[section]` of an Asterisk-style config file.

    Replaces the first `key=value` / `key => value` line of that section (keeping
    its separator) and drops any repeats of the key there; appends the key at the
    end of the section when absent. The section must appear exactly once (a
    header like `[name](template)` counts as `name`), so a typo or an ambiguous
    name fails loudly instead of silently configuring nothing.
    """
    lines = path.read_text().splitlines()
    headers = [i for i, line in enumerate(lines) if re.match(r"\s*\[", line)]
    starts = [i for i in headers if re.match(rf"\s*\[{re.escape(section)}\]", lines[i])]
    if len(starts) != 1:
        raise StackError(f"{path}: expected one [{section}] section, found {len(starts)}")
    start = starts[0]
    end = next((i for i in headers if i > start), len(lines))
    key_line = re.compile(rf"\s*{re.escape(key)}\s*(=>?)")
    found = [i for i in range(start + 1, end) if key_line.match(lines[i])]
    if found:
        separator = key_line.match(lines[found[0]]).group(1)
        lines[found[0]] = f"{key} {separator} {value}"
        for i in reversed(found[1:]):
            del lines[i]
    else:
        last = end - 1
        while last > start and not lines[last].strip():  # before the blank lines ending the section
            last -= 1
        lines.insert(last + 1, f"{key} = {value}")
    path.write_text("\n".join(lines) + "\n")


def agents_conf(ports: Ports) -> str:
    """pjsip_stack_agents.conf: the test agent endpoints (test stack only: no authentication)."""
    parts = [
        "; Generated by tools/stack.py for the test stack only: NEVER deploy this.\n"
        "; Test agent phones with no authentication, built from the agent-phone\n"
        "; templates of pjsip.conf. A request from 127.0.0.1 with From user agent900N\n"
        "; is this endpoint (endpoint_identifier_order puts username before ip), so it\n"
        "; enters [from-agents]; any other loopback request is still the carrier.\n"
        "; Calls to PJSIP/agent900N go to a test's sipp on 127.0.0.1:<port base + N>.\n"
        "; qualify_frequency = 0: no OPTIONS pings. A sipp agent runs only during its\n"
        "; test; a ping between tests would mark the contact Unavailable and Asterisk\n"
        "; would refuse to dial it (originate: 500 Allocation failed) until a later\n"
        "; ping succeeded, so a test could fail because of an earlier one.\n"
    ]
    for name, port in stack_agents(ports):
        parts.append(
            f"\n[{name}](agent-phone)\n"
            f"aors = {name}\n"
            f'callerid = "Agent {name[5:]}" <{name}>\n'
            f"\n[{name}](agent-phone-aor)\n"
            f"contact = sip:{name}@127.0.0.1:{port}\n"
            "qualify_frequency = 0\n"
        )
    return "".join(parts)


def agents_conf_current(asterisk: Asterisk, ports: Ports) -> bool:
    """Whether the running config has the test agents `up` would write now (e.g. same port base)."""
    try:
        return (asterisk.etc_dir / AGENTS_CONF).read_text() == agents_conf(ports)
    except OSError:
        return False


def install_config(etc_dir: Path, ports: Ports, creds: Credentials) -> None:
    """Fill etc_dir with the repo's reference config and the stack's overrides."""
    for folder in (REPO / "asterisk-conf", REPO / "dialplan"):
        for source in sorted(folder.iterdir()):
            if source.is_file():
                shutil.copyfile(source, etc_dir / source.name)
    overrides = [
        ("http.conf", "general", "bindaddr", "127.0.0.1"),
        ("http.conf", "general", "bindport", str(ports.http)),
        ("ari.conf", ARI_USER, "password", creds.ari_password),
        ("manager.conf", "general", "bindaddr", "127.0.0.1"),
        ("manager.conf", "general", "port", str(ports.ami)),
        ("manager.conf", AMI_USER, "secret", creds.ami_password),
        ("pjsip.conf", SIP_TRANSPORT, "bind", f"127.0.0.1:{ports.sip}"),
        ("pjsip.conf", "carrier-identify", "match", "127.0.0.1"),
        ("pjsip.conf", "carrier-aor", "contact", f"sip:127.0.0.1:{ports.carrier}"),
        # No OPTIONS pings: a test's carrier sipp comes and goes, and Asterisk refuses to
        # dial a contact it has seen unreachable until the next successful ping.
        ("pjsip.conf", "carrier-aor", "qualify_frequency", "0"),
        ("rtp.conf", "general", "rtpstart", str(RTP_RANGE[0])),
        ("rtp.conf", "general", "rtpend", str(RTP_RANGE[1])),
    ]
    for name, section, key, value in overrides:
        override_ini(etc_dir / name, section, key, value)
    (etc_dir / AGENTS_CONF).write_text(agents_conf(ports))
    with open(etc_dir / "pjsip.conf", "a") as pjsip:
        pjsip.write(f"\n; Test agent phones of the stack (tools/stack.py), not in the deploy reference.\n"
                    f"#include {AGENTS_CONF}\n")


# -------------------------------------------------------------- PostgreSQL


def pg_bin_dir() -> Path:
    """Debian's server binaries: the version the cluster was made with if installed, else the highest."""
    installed = sorted(
        (Path(p).parent.parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        key=lambda d: [int(x) for x in re.findall(r"\d+", d.name)],
    )
    if not installed:
        raise StackError("no PostgreSQL server in /usr/lib/postgresql: run `python3 tools/stack.py deps`")
    version_file = PG_DATA / "PG_VERSION"
    if version_file.exists():
        wanted = Path("/usr/lib/postgresql") / version_file.read_text().strip()
        if wanted in installed:
            return wanted / "bin"
    return installed[-1] / "bin"


def pg_answers(dsn: str) -> bool:
    result = run(["psql", dsn, "-XtAc", "select 1"], check=False, timeout=10)
    return result.returncode == 0 and result.stdout.strip() == "1"


def as_postgres(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    # cwd=/: initdb and pg_ctl fail when they cannot read the current directory.
    return run(["runuser", "-u", "postgres", "--", *cmd], cwd="/", **kwargs)


def pg_running(bin_dir: Path) -> bool:
    if not (PG_DATA / "PG_VERSION").exists():
        return False
    return as_postgres([str(bin_dir / "pg_ctl"), "status", "-D", str(PG_DATA)], check=False).returncode == 0


def make_state_dirs() -> None:
    """Create STATE_DIR (and its parent) open to the postgres and asterisk users, whatever the umask."""
    for directory in (STATE_DIR.parent, STATE_DIR):
        if not directory.exists():
            directory.mkdir()
            directory.chmod(0o755)


def pg_up(port: int) -> tuple[str, str]:
    """Start (or find) PostgreSQL; return (DSN, data dir or '' when external)."""
    external = os.environ.get("CALLCENTER_DSN")
    if external == f"postgresql://postgres@127.0.0.1:{port}/{DB_NAME}":
        external = None  # our own DSN, from a shell that sourced stack.env: not an external server
    if external:
        if not pg_answers(external):
            raise StackError("the server of CALLCENTER_DSN does not answer `select 1`")
        say("postgres: using CALLCENTER_DSN")
        return external, ""

    dsn_admin = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    bin_dir = pg_bin_dir()
    if not (PG_DATA / "PG_VERSION").exists():
        make_state_dirs()
        shutil.rmtree(PG_DATA, ignore_errors=True)  # left by an interrupted initdb
        PG_DATA.mkdir(mode=0o700)
        shutil.chown(PG_DATA, "postgres", "postgres")
        say(f"postgres: initdb {PG_DATA}")
        as_postgres([str(bin_dir / "initdb"), "-D", str(PG_DATA), "-A", "trust", "-U", "postgres",
                     "-E", "UTF8", "--no-locale"])
    if not pg_running(bin_dir):
        say(f"postgres: starting on 127.0.0.1:{port}")
        options = f"-p {port} -k {PG_DATA} -c listen_addresses=127.0.0.1"
        started = as_postgres(
            [str(bin_dir / "pg_ctl"), "start", "-D", str(PG_DATA), "-l", str(PG_LOG), "-w", "-t", "60",
             "-o", options],
            check=False, timeout=90,
        )
        if started.returncode != 0:
            raise StackError(f"pg_ctl start failed\n{started.stdout}{started.stderr}{tail(PG_LOG)}")
    if not pg_answers(dsn_admin):
        raise StackError(f"PostgreSQL in {PG_DATA} does not answer on port {port}\n{tail(PG_LOG)}")
    exists = run(["psql", dsn_admin, "-XtAc",
                  f"select 1 from pg_database where datname = '{DB_NAME}'"]).stdout.strip()
    if exists != "1":
        run(["psql", dsn_admin, "-Xqc", f"create database {DB_NAME}"])
    return f"postgresql://postgres@127.0.0.1:{port}/{DB_NAME}", str(PG_DATA)


def pg_down() -> None:
    if not (PG_DATA / "PG_VERSION").exists():
        return
    bin_dir = pg_bin_dir()
    if pg_running(bin_dir):
        say("postgres: stopping")
        as_postgres([str(bin_dir / "pg_ctl"), "stop", "-D", str(PG_DATA), "-m", "fast", "-w"], timeout=90)


# ------------------------------------------------------------ Asterisk layouts


@dataclasses.dataclass(frozen=True)
class Asterisk:
    """Where one Asterisk installation keeps things, and how to run it.

    Paths inside the process (what `core show settings` prints) are seen from the
    host under `root` (the rootfs, or / for a system-wide binary).
    """

    root: Path
    etc_dir: Path  # host path of the config dir we write
    start: tuple[str, ...]
    cli: tuple[str, ...]  # prefix: append one CLI command as a single argument
    prepare: Callable[[Asterisk, Ports, Credentials], None]  # write config, make dirs (process stopped)

    @property
    def rootfs(self) -> str:
        return "" if self.root == Path("/") else str(self.root)

    def host_path(self, inner: str) -> Path:
        """Resolve a path of the Asterisk process to a host path, following symlinks inside root."""
        pending = list(PurePosixPath(inner).parts[1:])
        current = PurePosixPath("/")
        hops = 0
        while pending:
            part = pending.pop(0)
            if part == "..":
                current = current.parent
                continue
            host = self.root / (current / part).relative_to("/")
            if host.is_symlink():
                hops += 1
                if hops > 40:
                    raise StackError(f"symlink loop resolving {inner} in {self.root}")
                target = PurePosixPath(os.readlink(host))
                if target.is_absolute():  # absolute links point inside the rootfs, not the host
                    current, pending = PurePosixPath("/"), [*target.parts[1:], *pending]
                else:
                    pending = [*target.parts, *pending]
                continue
            current = current / part
        return self.root / current.relative_to("/")


def find_asterisk() -> Asterisk:
    binary = shutil.which("asterisk")
    return system_asterisk(binary) if binary else rootfs_asterisk()


def rootfs_asterisk() -> Asterisk:
    chroot = ("chroot", str(ROOTFS), "/usr/sbin/asterisk")
    return Asterisk(
        root=ROOTFS,
        etc_dir=ROOTFS / "etc/asterisk",
        start=(*chroot, "-f", "-U", "asterisk", "-G", "asterisk"),
        cli=(*chroot, "-rx"),
        prepare=prepare_rootfs,
    )


def system_asterisk(binary: str) -> Asterisk:
    """An installed asterisk run with a private tree under STATE_DIR (never the system's own)."""
    conf = PRIVATE_ASTERISK / "etc/asterisk.conf"
    user = ("-U", "asterisk", "-G", "asterisk") if has_user("asterisk") else ()
    return Asterisk(
        root=Path("/"),
        etc_dir=PRIVATE_ASTERISK / "etc",
        start=(binary, "-f", "-C", str(conf), *user),
        cli=(binary, "-C", str(conf), "-rx"),
        prepare=prepare_private_tree,
    )


def has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def prepare_private_tree(asterisk: Asterisk, ports: Ports, creds: Credentials) -> None:
    make_state_dirs()
    shutil.rmtree(asterisk.etc_dir, ignore_errors=True)
    private = {
        "astetcdir": "etc", "astrundir": "run", "astlogdir": "log", "astspooldir": "spool",
        "astvarlibdir": "lib", "astdbdir": "lib", "astcachedir": "cache",
    }
    for sub in private.values():
        (PRIVATE_ASTERISK / sub).mkdir(parents=True, exist_ok=True)
    (PRIVATE_ASTERISK / "spool/recording").mkdir(exist_ok=True)
    install_config(asterisk.etc_dir, ports, creds)
    conf = asterisk.etc_dir / "asterisk.conf"
    for key, sub in private.items():
        override_ini(conf, "directories", key, str(PRIVATE_ASTERISK / sub))
    # Modules and sounds stay where the system's asterisk.conf says (or the built-in defaults).
    system = system_directories()
    for key in ("astmoddir", "astdatadir"):
        if key in system:
            override_ini(conf, "directories", key, system[key])
    if has_user("asterisk"):
        run(["chown", "-R", "asterisk:asterisk", str(PRIVATE_ASTERISK)])


def system_directories(path: Path = Path("/etc/asterisk/asterisk.conf")) -> dict[str, str]:
    """The [directories] entries of the system's asterisk.conf (empty if none)."""
    values: dict[str, str] = {}
    section = ""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return values
    for line in text.splitlines():
        line = line.split(";", 1)[0].strip()
        header = re.match(r"\[([^\]]+)\]", line)
        if header:
            section = header.group(1)
        elif section == "directories" and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.lstrip(">").strip()
    return values


def prepare_rootfs(asterisk: Asterisk, ports: Ports, creds: Credentials) -> None:
    ensure_rootfs()
    # Blocking DNS look-ups at channel creation otherwise (see docs/asterisk.md).
    names = " ".join(dict.fromkeys([socket.gethostname(), "localhost", "A.ROOT-SERVERS.NET"]))
    (ROOTFS / "etc/hosts").write_text(f"127.0.0.1 {names}\n::1 localhost\n")
    (ROOTFS / "run/asterisk").mkdir(exist_ok=True)
    (ROOTFS / "var/spool/asterisk/recording").mkdir(exist_ok=True)  # ARI record requests fail without it
    shutil.rmtree(asterisk.etc_dir, ignore_errors=True)
    asterisk.etc_dir.mkdir()
    install_config(asterisk.etc_dir, ports, creds)
    # Asterisk runs as the rootfs's asterisk user (as root it cannot open its astdb):
    # chown inside the chroot so the rootfs's own user database resolves the name.
    run(["chroot", str(ROOTFS), "chown", "-R", "asterisk:asterisk", "/run/asterisk", "/var/lib/asterisk",
         "/var/log/asterisk", "/var/spool/asterisk", "/etc/asterisk"], env={"PATH": CLEAN_PATH})


# ---------------------------------------------------------------- rootfs cache


def ensure_rootfs() -> None:
    """Build the Debian sid rootfs with Asterisk once; rebuild when ROOTFS_PACKAGES changes.

    Built in a temporary folder beside the cache and renamed into place, so an
    interrupted build is never used.
    """
    recipe = " ".join(ROOTFS_PACKAGES) + "\n"
    stamp = ROOTFS / ROOTFS_RECIPE
    if stamp.exists() and stamp.read_text() == recipe:
        return
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / "asterisk-rootfs.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another `up` may be building it
        if stamp.exists() and stamp.read_text() == recipe:
            return
        for stale in [*CACHE_DIR.glob("asterisk-rootfs.tmp-*"), *CACHE_DIR.glob("asterisk-rootfs.old-*")]:
            remove_tree(stale)  # left by an interrupted build
        mirror = debian_mirror()
        if not shutil.which("mmdebstrap"):
            raise StackError("mmdebstrap is missing: run `python3 tools/stack.py deps`")
        say(f"building the Asterisk rootfs in {ROOTFS} (Debian sid, about half a minute)")
        started = time.monotonic()
        tmp = Path(tempfile.mkdtemp(dir=CACHE_DIR, prefix="asterisk-rootfs.tmp-"))
        build_log = CACHE_DIR / "asterisk-rootfs.build.log"
        try:
            with open(build_log, "wb") as log:
                build = subprocess.Popen(
                    ["mmdebstrap", "--variant=apt", "--aptopt=Acquire::Check-Valid-Until \"false\"",
                     "--include=" + ",".join(ROOTFS_PACKAGES), "sid", str(tmp),
                     f"deb [trusted=yes] {mirror} sid main"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                )
                try:
                    status = build.wait(timeout=1800)
                except subprocess.TimeoutExpired:
                    raise StackError(f"mmdebstrap still running after 30 min\n{tail(build_log)}") from None
                finally:
                    stop_gently(build)  # on Ctrl-C or timeout: let mmdebstrap unmount /proc, /sys, /dev/pts
            if status != 0:
                raise StackError(f"mmdebstrap exited {status}\n{tail(build_log)}")
            (tmp / "etc/asterisk").rename(tmp / "etc/asterisk.dist")  # the package's own config, kept once
            (tmp / ROOTFS_RECIPE).write_text(recipe)
            if ROOTFS.exists():
                old = CACHE_DIR / f"asterisk-rootfs.old-{os.getpid()}"
                ROOTFS.rename(old)
                tmp.rename(ROOTFS)
                remove_tree(old)
            else:
                tmp.rename(ROOTFS)
        except BaseException:
            remove_tree(tmp)
            raise
        say(f"rootfs built in {time.monotonic() - started:.1f} s")


def stop_gently(process: subprocess.Popen, grace: float = 30) -> None:
    """SIGTERM a child still running, SIGKILL it if it has not exited after `grace` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()) + "/"
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts]
    return [p for p in points if p.startswith(prefix)]


def remove_tree(path: Path) -> None:
    """rmtree of a (partial) rootfs: unmount what a killed mmdebstrap left mounted inside first,
    and refuse to descend into anything still mounted."""
    if not path.exists():
        return
    for point in sorted(mounts_under(path), key=len, reverse=True):
        run(["umount", "--lazy", point], check=False)
    busy = mounts_under(path)
    if busy:
        raise StackError(f"cannot remove {path}: still mounted: {' '.join(busy)}")
    shutil.rmtree(path)


def debian_mirror() -> str:
    """The Debian archive this machine's apt uses (never hard-coded in the repo).

    CALLCENTER_DEBIAN_MIRROR overrides it. Otherwise the first URI of an enabled
    `deb` source for a Debian suite (not -security/-updates): deb822 *.sources
    files first, then one-line sources.list entries.
    """
    override = os.environ.get("CALLCENTER_DEBIAN_MIRROR")
    if override:
        return override
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        for stanza in re.split(r"\n\s*\n", Path(path).read_text(errors="replace")):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if re.match(r"[A-Za-z-]+:", line):
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
            if (fields.get("enabled", "yes").lower() != "no" and "deb" in fields.get("types", "").split()
                    and DEBIAN_SUITES & set(fields.get("suites", "").split()) and fields.get("uris")):
                return fields["uris"].split()[0]
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
        with contextlib.suppress(OSError):
            for line in Path(path).read_text(errors="replace").splitlines():
                words = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0]).split()
                if len(words) >= 3 and words[0] == "deb" and words[2] in DEBIAN_SUITES:
                    return words[1]
    raise StackError("found no Debian mirror in /etc/apt/sources.list*: set CALLCENTER_DEBIAN_MIRROR")


# ------------------------------------------------------------ Asterisk process


def read_pid() -> int | None:
    """The pid of our Asterisk if it is still alive (and still Asterisk)."""
    try:
        pid = int(ASTERISK_PID.read_text().strip())
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except (OSError, ValueError, IndexError):
        return None
    if state == "Z" or os.path.basename(argv0) not in (b"asterisk", b"chroot"):
        return None
    return pid


def cli(asterisk: Asterisk, command: str, timeout: float = 10) -> subprocess.CompletedProcess:
    return run([*asterisk.cli, command], check=False, timeout=timeout, env={"PATH": CLEAN_PATH})


def ari_answers(ports: Ports, creds: Credentials) -> bool:
    token = base64.b64encode(f"{ARI_USER}:{creds.ari_password}".encode()).decode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{ports.http}/ari/asterisk/info", headers={"Authorization": f"Basic {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def ami_answers(ports: Ports, creds: Credentials) -> bool:
    """Log in over AMI; True on `Response: Success`."""
    try:
        with socket.create_connection(("127.0.0.1", ports.ami), timeout=2) as sock:
            stream = sock.makefile("rwb")
            if not stream.readline().startswith(b"Asterisk Call Manager"):
                return False
            stream.write(f"Action: Login\r\nUsername: {AMI_USER}\r\nSecret: {creds.ami_password}\r\n"
                         "Events: off\r\n\r\n".encode())
            stream.flush()
            reply = []
            while (line := stream.readline()) not in (b"\r\n", b""):
                reply.append(line)
            stream.write(b"Action: Logoff\r\n\r\n")
            stream.flush()
            return b"Response: Success\r\n" in reply
    except OSError:
        return False


def sip_transport_listed(asterisk: Asterisk, ports: Ports) -> bool:
    out = cli(asterisk, "pjsip show transports").stdout
    return SIP_TRANSPORT in out and f"127.0.0.1:{ports.sip}" in out


def agents_listed(asterisk: Asterisk, ports: Ports) -> bool:
    out = cli(asterisk, "pjsip show endpoints").stdout
    return all(re.search(rf"Endpoint:\s+{name}\b", out) for name, _ in stack_agents(ports))


def asterisk_healthy(asterisk: Asterisk, ports: Ports, creds: Credentials) -> bool:
    return (read_pid() is not None and ari_answers(ports, creds) and ami_answers(ports, creds)
            and sip_transport_listed(asterisk, ports))


def asterisk_up(asterisk: Asterisk, ports: Ports, creds: Credentials) -> None:
    if asterisk_healthy(asterisk, ports, creds):
        if agents_conf_current(asterisk, ports):
            say("asterisk: already running")
            return
        say("asterisk: running without the current test agents config, restarting it")
    asterisk_down(asterisk)
    asterisk.prepare(asterisk, ports, creds)
    ensure_run_dir()
    if ASTERISK_LOG.exists():  # each start gets a fresh log; the previous one is kept once
        ASTERISK_LOG.rename(ASTERISK_LOG.with_name(ASTERISK_LOG.name + ".1"))
    say("asterisk: starting")
    started = time.monotonic()
    with open(ASTERISK_LOG, "wb") as log:
        process = subprocess.Popen(
            asterisk.start, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd="/",
            start_new_session=True, env={"PATH": CLEAN_PATH},
        )
    ASTERISK_PID.write_text(f"{process.pid}\n")
    checks = (
        ("ARI", lambda: ari_answers(ports, creds)),
        ("AMI", lambda: ami_answers(ports, creds)),
        (f"SIP transport {SIP_TRANSPORT}", lambda: sip_transport_listed(asterisk, ports)),
        (f"test agent endpoints ({AGENTS_CONF})", lambda: agents_listed(asterisk, ports)),
    )
    deadline = started + START_TIMEOUT
    for name, check in checks:
        while not check():
            if process.poll() is not None:
                raise StackError(f"asterisk exited with status {process.returncode}\n{tail(ASTERISK_LOG)}")
            if time.monotonic() > deadline:
                raise StackError(f"asterisk: {name} not answering after {START_TIMEOUT:.0f} s\n{tail(ASTERISK_LOG)}")
            time.sleep(0.1)
    say(f"asterisk: ready in {time.monotonic() - started:.1f} s (pid {process.pid})")


def asterisk_down(asterisk: Asterisk) -> None:
    """`core stop now` over the CLI, then SIGTERM and SIGKILL the pid, each with a deadline."""
    pid = read_pid()
    stopped = cli(asterisk, "core stop now").returncode == 0
    if pid is None:
        ASTERISK_PID.unlink(missing_ok=True)
        if stopped:  # an instance whose pid file was lost: wait until its CLI socket is gone
            say("asterisk: stopping an instance that had no pid file")
            deadline = time.monotonic() + STOP_TIMEOUT
            while cli(asterisk, "core show version").returncode == 0:
                if time.monotonic() > deadline:
                    raise StackError("an asterisk without pid file does not stop")
                time.sleep(0.1)
        return
    say(f"asterisk: stopping pid {pid}")
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline:
            if read_pid() is None:
                ASTERISK_PID.unlink(missing_ok=True)
                return
            time.sleep(0.1)
    raise StackError(f"asterisk pid {pid} does not die")


def settings(asterisk: Asterisk) -> dict[str, str]:
    """`core show settings` of the running Asterisk, e.g. {'Data directory': '/usr/share/asterisk'}."""
    out = cli(asterisk, "core show settings").stdout
    return {key.strip(): value.strip() for key, _, value in
            (line.partition(":") for line in out.splitlines()) if value.strip()}


# ------------------------------------------------------------------ commands


def cmd_up() -> None:
    ports = Ports.from_env()
    creds = load_credentials(create=True)
    dsn, pg_data = pg_up(ports.pg)
    asterisk = find_asterisk()
    asterisk_up(asterisk, ports, creds)
    write_stack_env(asterisk, ports, creds, dsn, pg_data)
    say(f"up; environment in {STACK_ENV}")


def write_stack_env(asterisk: Asterisk, ports: Ports, creds: Credentials, dsn: str, pg_data: str) -> None:
    info = settings(asterisk)
    data_dir, spool_dir = info.get("Data directory"), info.get("Spool directory")
    if not data_dir or not spool_dir:
        raise StackError("`core show settings` did not name the data and spool directories")
    values = {
        "CALLCENTER_DSN": dsn,
        "CALLCENTER_STACK_PG_DATA": pg_data,
        "ASTERISK_ARI_URL": f"http://127.0.0.1:{ports.http}/ari",
        "ASTERISK_ARI_USER": ARI_USER,
        "ASTERISK_ARI_PASSWORD": creds.ari_password,
        "ASTERISK_AMI_HOST": "127.0.0.1",
        "ASTERISK_AMI_PORT": str(ports.ami),
        "ASTERISK_AMI_USER": AMI_USER,
        "ASTERISK_AMI_PASSWORD": creds.ami_password,
        "ASTERISK_SIP_HOST": "127.0.0.1",
        "ASTERISK_SIP_PORT": str(ports.sip),
        "ASTERISK_CARRIER_SIP_PORT": str(ports.carrier),
        # agent900N is dialled at 127.0.0.1:(ASTERISK_AGENT_PORT_BASE + N): agent9001 at base + 1
        "ASTERISK_AGENT_PORT_BASE": str(ports.agent_base),
        "ASTERISK_AGENT_ENDPOINTS": ",".join(name for name, _ in stack_agents(ports)),
        "ASTERISK_ROOTFS": asterisk.rootfs,
        "ASTERISK_CLI": shlex.join(asterisk.cli),
        "ASTERISK_SOUNDS_DIR": str(asterisk.host_path(f"{data_dir}/sounds/en")),
        "ASTERISK_RECORDING_DIR": str(asterisk.host_path(f"{spool_dir}/recording")),
        "ASTERISK_LOG": str(ASTERISK_LOG),
    }
    ensure_run_dir()
    # Only KEY=value lines (values shell-quoted): `set -a; . .run/stack.env; set +a` in a shell,
    # or shlex.split() of each value in Python.
    # it holds the ARI and AMI passwords: readable by root only, like credentials.json
    fd = os.open(STACK_ENV, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)   # one written by an older stack.py
    with os.fdopen(fd, "w") as f:
        f.write("".join(f"{key}={shlex.quote(value)}\n" for key, value in values.items()))


def cmd_down() -> None:
    asterisk_down(find_asterisk())
    pg_down()
    say("down")


def cmd_status() -> int:
    ports = Ports.from_env()
    creds = load_credentials(create=False)
    dsn = os.environ.get("CALLCENTER_DSN") or f"postgresql://postgres@127.0.0.1:{ports.pg}/{DB_NAME}"
    pg_ok = pg_answers(dsn)
    print(f"postgres: {'up' if pg_ok else 'down'}  {dsn}")
    asterisk = find_asterisk()
    pid = read_pid()
    ari_ok = creds is not None and ari_answers(ports, creds)
    ami_ok = creds is not None and ami_answers(ports, creds)
    sip_ok = pid is not None and sip_transport_listed(asterisk, ports)
    ast_ok = pid is not None and ari_ok and ami_ok and sip_ok
    print(f"asterisk: {'up' if ast_ok else 'down'}  pid {pid or '-'}, "
          f"ARI {'ok' if ari_ok else 'no'} (port {ports.http}), AMI {'ok' if ami_ok else 'no'} (port {ports.ami}), "
          f"SIP {'ok' if sip_ok else 'no'} (udp {ports.sip}), {asterisk.rootfs or 'asterisk from PATH'}")
    return 0 if pg_ok and ast_ok else 1


def cmd_env() -> int:
    print(STACK_ENV)
    return 0 if STACK_ENV.exists() else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("deps", "up", "down", "status", "env"))
    command = parser.parse_args().command
    if command in ("deps", "up", "down") and os.geteuid() != 0:
        say(f"`{command}` must run as root")
        return 1
    try:
        if command == "deps":
            cmd_deps()
        elif command == "up":
            cmd_up()
        elif command == "down":
            cmd_down()
        elif command == "status":
            return cmd_status()
        elif command == "env":
            return cmd_env()
    except StackError as exc:
        say(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
