#!/usr/bin/env python3
"""Write a pcap of RTP audio (G.711 A-law) for sipp's `play_pcap_audio`: synthetic voice and silence.

    python3 tools/make_rtp_pcap.py OUT.pcap --pattern voice:1.0,silence:6
    python3 tools/make_rtp_pcap.py OUT.pcap --preset human|machine|machine-words|silence
    python3 tools/make_rtp_pcap.py OUT.pcap --pattern ... --print-levels   # check what AMD will see

Standard library only (struct, math, random), for the system python3 or the project's virtualenv.
Tests can also import it (``sys.path`` to tools/) and call :func:`write_pcap`.

The pattern is a comma-separated list of ``KIND:SECONDS``, played in order:

- ``voice``: speech-like sound, one continuous utterance: a voiced tone (fundamental 110-190 Hz
  with a slow pitch glide, 12 harmonics shaped by two moving formants) plus a little noise,
  amplitude-modulated at a syllable rate of about 4 Hz between 55 % and 100 %, with 15 ms
  fades at both ends. Every 20 ms frame inside an utterance stays far above Asterisk's
  silence threshold (amd.conf silence_threshold 256, the average absolute sample level of a
  frame: voice frames average 650-4100 over seeds 0-59), so AMD() takes one utterance for ONE word however
  long it is (it splits words only at >= between_words_silence, 50 ms, of silence);
- ``silence``: A-law digital silence (0xD5), still sent as RTP packets at the normal pace;
- ``noise``: white noise at ``--noise-level`` (default 60, below the silence threshold:
  line hiss that AMD still takes for silence).

Durations are rounded to whole 20 ms frames. Presets, with what AMD() said about them on the
test stack (Asterisk 22.10, the repo's asterisk-conf/amd.conf, the same verdict every time: 20 calls
each for human, machine and machine-words, 3 for silence; time from answer to the verdict; see
tests/sipp/README.md):

  human          silence:0.2,voice:1.0,silence:6    "hello?", then waiting:
                                                    HUMAN (HUMAN-800-800) after 1.98 s
  machine        silence:0.2,voice:6,silence:2      one long greeting:
                                                    MACHINE (LONGGREETING-1500-1500) after 1.68 s
  machine-words  silence:0.2, 10 x (voice:0.45,silence:0.15), silence:2
                                                    a greeting of words:
                                                    MACHINE (MAXWORDS-3-2) after 1.48 s
  silence        silence:8                          answers and says nothing:
                                                    MACHINE (INITIALSILENCE-2500-2500) after 2.48 s

Packets: RTP version 2, payload type 8 (PCMA), 160-byte payloads every 20 ms (--ptime), sequence
numbers +1 and timestamps +160 per packet from random starting values (fixed by --seed), marker bit
on the first packet; carried in UDP/IPv4/Ethernet (pcap link type 1, like sipp's own g711a.pcap).
sipp replaces the addresses and ports with the call's media addresses and paces the packets by the
pcap timestamps; the ones written here (--src/--dst) are placeholders.
"""

from __future__ import annotations

import argparse
import math
import random
import struct
import sys
from pathlib import Path

RATE = 8000  # samples per second (G.711)
ALAW_SILENCE = 0xD5  # A-law code of a zero sample
PAYLOAD_PCMA = 8

PRESETS = {
    "human": "silence:0.2,voice:1.0,silence:6",
    "machine": "silence:0.2,voice:6,silence:2",
    "machine-words": "silence:0.2," + ",".join(["voice:0.45,silence:0.15"] * 10) + ",silence:2",
    "silence": "silence:8",
}
KINDS = ("voice", "silence", "noise")


# ------------------------------------------------------------------ G.711 A-law

_SEG_END = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def linear_to_alaw(sample: int) -> int:
    """One 16-bit signed linear sample to its A-law code (ITU-T G.711, as in the reference g711.c)."""
    sample = max(-32768, min(32767, int(sample))) >> 3  # 13-bit magnitude
    if sample >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        sample = -sample - 1
    for seg, end in enumerate(_SEG_END):
        if sample <= end:
            break
    else:
        return 0x7F ^ mask
    code = seg << 4
    code |= (sample >> 1 if seg < 2 else sample >> seg) & 0x0F
    return code ^ mask


def alaw_to_linear(code: int) -> int:
    """An A-law code back to a 16-bit signed linear sample (for checks)."""
    code ^= 0x55
    t = (code & 0x0F) << 4
    seg = (code & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if code & 0x80 else -t


_ALAW_TABLE = bytes(linear_to_alaw(v) for v in range(-32768, 32768, 8))  # 13-bit resolution is exact


def encode_alaw(samples: list[float]) -> bytes:
    return bytes(_ALAW_TABLE[(max(-32768, min(32767, int(s))) + 32768) >> 3] for s in samples)


# ------------------------------------------------------------------ signals


def parse_pattern(text: str) -> list[tuple[str, float]]:
    """"voice:1.0,silence:6" -> [("voice", 1.0), ("silence", 6.0)]; a preset name is accepted too."""
    text = PRESETS.get(text, text)
    parts = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        kind, sep, seconds = item.partition(":")
        kind = kind.strip().lower()
        if kind not in KINDS or not sep:
            raise ValueError(f"pattern item {item!r}: expected KIND:SECONDS with KIND one of {', '.join(KINDS)}")
        try:
            value = float(seconds)
        except ValueError:
            raise ValueError(f"pattern item {item!r}: {seconds!r} is not a number of seconds") from None
        if not 0 <= value <= 600:
            raise ValueError(f"pattern item {item!r}: seconds must be between 0 and 600")
        parts.append((kind, value))
    if not parts:
        raise ValueError("empty pattern")
    return parts


def voice(n: int, rng: random.Random, level: float) -> list[float]:
    """n samples of speech-like sound: harmonics of a gliding fundamental, two moving formants,
    syllable-rate amplitude modulation and a little noise; fades of 15 ms at both ends."""
    f0_start = rng.uniform(110, 190)
    f0_end = f0_start * rng.uniform(0.8, 1.25)
    syllable_hz = rng.uniform(3.5, 5.0)
    syllable_phase = rng.uniform(0, 2 * math.pi)
    formant_phase = rng.uniform(0, 2 * math.pi)
    harmonics = 12
    phases = [rng.uniform(0, 2 * math.pi) for _ in range(harmonics)]
    fade = int(0.015 * RATE)
    out = []
    phase0 = 0.0  # phase of the fundamental, integrated so the glide is smooth
    for i in range(n):
        t = i / RATE
        frac = i / max(1, n - 1)
        f0 = f0_start + (f0_end - f0_start) * frac
        phase0 += 2 * math.pi * f0 / RATE
        # formants wander with the syllables: F1 400-800 Hz, F2 1000-2000 Hz
        sway = 0.5 + 0.5 * math.sin(2 * math.pi * syllable_hz * t + formant_phase)
        f1 = 400 + 400 * sway
        f2 = 2000 - 1000 * sway
        s = 0.0
        for h in range(1, harmonics + 1):
            fh = f0 * h
            if fh >= RATE / 2:
                break
            gain = 1 / h + 1.2 * math.exp(-((fh - f1) / 150) ** 2) + 0.6 * math.exp(-((fh - f2) / 250) ** 2)
            s += gain * math.sin(h * phase0 + phases[h - 1])
        s += rng.gauss(0, 0.15)
        envelope = 0.55 + 0.45 * (0.5 + 0.5 * math.sin(2 * math.pi * syllable_hz * t + syllable_phase))
        if i < fade:
            envelope *= i / fade
        elif n - i <= fade:
            envelope *= (n - i) / fade
        out.append(s * envelope)
    peak = max((abs(v) for v in out), default=0) or 1
    return [v * level / peak for v in out]


def samples_for(pattern: list[tuple[str, float]], seed: int | None, level: float, noise_level: float,
                ptime_ms: int) -> list[float]:
    rng = random.Random(seed)
    frame = RATE * ptime_ms // 1000
    out: list[float] = []
    for kind, seconds in pattern:
        n = round(seconds * 1000 / ptime_ms) * frame
        if kind == "voice":
            out.extend(voice(n, rng, level))
        elif kind == "noise":
            out.extend(rng.uniform(-2, 2) * noise_level for _ in range(n))  # mean |x| = noise_level
        else:
            out.extend([0.0] * n)
    return out


# ------------------------------------------------------------------ packets


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _addr(text: str) -> tuple[bytes, int]:
    host, _, port = text.rpartition(":")
    return bytes(int(x) for x in host.split(".")), int(port)


def udp_frame(payload: bytes, src: str, dst: str, ident: int) -> bytes:
    """Ethernet + IPv4 + UDP around payload."""
    (src_ip, src_port), (dst_ip, dst_port) = _addr(src), _addr(dst)
    udp_len = 8 + len(payload)
    pseudo = src_ip + dst_ip + struct.pack("!BBH", 0, 17, udp_len)
    udp = struct.pack("!HHHH", src_port, dst_port, udp_len, 0) + payload
    udp_sum = _checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", udp_sum) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0xB8, 20 + udp_len, ident & 0xFFFF, 0x4000, 64, 17, 0, src_ip, dst_ip)
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    ether = bytes.fromhex("020000000002") + bytes.fromhex("020000000001") + struct.pack("!H", 0x0800)
    return ether + ip + udp


def rtp_packets(alaw: bytes, seed: int | None, ptime_ms: int) -> list[bytes]:
    rng = random.Random(None if seed is None else seed + 1)
    seq = rng.randrange(0x10000)
    ts = rng.randrange(0x100000000)
    ssrc = rng.randrange(1, 0x100000000)
    frame = RATE * ptime_ms // 1000
    packets = []
    for k, start in enumerate(range(0, len(alaw), frame)):
        payload = alaw[start:start + frame].ljust(frame, bytes([ALAW_SILENCE]))
        marker = 0x80 if k == 0 else 0
        header = struct.pack("!BBHII", 0x80, marker | PAYLOAD_PCMA, (seq + k) & 0xFFFF,
                             (ts + k * frame) & 0xFFFFFFFF, ssrc)
        packets.append(header + payload)
    return packets


def write_pcap(path: str | Path, pattern: str | list[tuple[str, float]], *, seed: int | None = 1,
               level: float = 9000, noise_level: float = 60, ptime_ms: int = 20,
               src: str = "127.0.0.1:6000", dst: str = "127.0.0.1:30000", start: float = 1_700_000_000.0) -> int:
    """Write the pcap; return the number of RTP packets. level: peak of the voice (of 32767)."""
    if isinstance(pattern, str):
        pattern = parse_pattern(pattern)
    if ptime_ms not in (10, 20, 30, 40):
        raise ValueError("ptime must be 10, 20, 30 or 40 ms")
    alaw = encode_alaw(samples_for(pattern, seed, level, noise_level, ptime_ms))
    packets = rtp_packets(alaw, seed, ptime_ms)
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # pcap, LINKTYPE_ETHERNET
        for k, rtp in enumerate(packets):
            frame = udp_frame(rtp, src, dst, k)
            micros = round((start % 1) * 1e6) + k * ptime_ms * 1000
            seconds = int(start) + micros // 1_000_000
            out.write(struct.pack("<IIII", seconds, micros % 1_000_000, len(frame), len(frame)))
            out.write(frame)
    return len(packets)


def frame_levels(path: str | Path) -> list[float]:
    """Average absolute linear level of each packet's payload, as Asterisk's silence detector computes it."""
    data = Path(path).read_bytes()
    offset, levels = 24, []
    while offset + 16 <= len(data):
        incl = struct.unpack("<IIII", data[offset:offset + 16])[2]
        frame = data[offset + 16:offset + 16 + incl]
        offset += 16 + incl
        payload = frame[14 + 20 + 8 + 12:]
        levels.append(sum(abs(alaw_to_linear(c)) for c in payload) / max(1, len(payload)))
    return levels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("out", help="pcap file to write")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--pattern", help="KIND:SECONDS,... (voice, silence, noise)")
    which.add_argument("--preset", choices=sorted(PRESETS))
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1: the same file every time)")
    parser.add_argument("--level", type=float, default=9000, help="peak of the voice, of 32767 (default 9000)")
    parser.add_argument("--noise-level", type=float, default=60, help="mean level of `noise` (default 60)")
    parser.add_argument("--ptime", type=int, default=20, help="ms of audio per packet (default 20)")
    parser.add_argument("--src", default="127.0.0.1:6000", help="placeholder source (sipp rewrites it)")
    parser.add_argument("--dst", default="127.0.0.1:30000", help="placeholder destination (sipp rewrites it)")
    parser.add_argument("--print-levels", action="store_true",
                        help="print each packet's average level (Asterisk's silence test: level < threshold)")
    args = parser.parse_args(argv)
    try:
        pattern = parse_pattern(args.pattern or args.preset)
        count = write_pcap(args.out, pattern, seed=args.seed, level=args.level, noise_level=args.noise_level,
                           ptime_ms=args.ptime, src=args.src, dst=args.dst)
    except ValueError as error:
        parser.error(str(error))
    seconds = count * args.ptime / 1000
    print(f"{args.out}: {count} RTP packets, {seconds:.2f} s "
          f"({','.join(f'{k}:{s:g}' for k, s in pattern)})", file=sys.stderr)
    if args.print_levels:
        for k, level in enumerate(frame_levels(args.out)):
            print(f"{k * args.ptime / 1000:7.2f} s  {level:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
