"""Writes sunset.png: a 96x64 RGB PNG (blue-to-orange sky, sun, green field), with the standard library only."""

import struct
import zlib
from pathlib import Path

WIDTH, HEIGHT = 96, 64


def pixel(x: int, y: int) -> tuple[int, int, int]:
    if (x - 70) ** 2 + (y - 18) ** 2 < 64:
        return 250, 220, 90  # sun
    if y < 40:
        t = y / 40  # deep blue sky fading to orange near the horizon
        return int(20 + 200 * t), int(40 + 80 * t), int(120 - 60 * t)
    return 30, 90, 40  # green field


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def main() -> None:
    raw = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(WIDTH)) for y in range(HEIGHT))
    header = struct.pack(">IIBBBBB", WIDTH, HEIGHT, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    Path(__file__).with_name("sunset.png").write_bytes(png)


if __name__ == "__main__":
    main()
