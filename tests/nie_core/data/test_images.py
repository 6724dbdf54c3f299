from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from nie_core.data.images import (
    ImageDecodeError,
    ImageTooLargeError,
    decode_image,
    encode_png,
    read_image,
    save_image,
    to_tensor,
    to_uint8,
)


def png_bytes(width: int, height: int, bit_depth: int, color_type: int, rows: list[bytes]) -> bytes:
    """A minimal PNG (no filtering) written by hand, for formats Pillow cannot write."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    raw = b"".join(b"\x00" + row for row in rows)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def encode(img: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def test_grayscale_is_replicated_to_three_channels(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    path = tmp_path / "gray.png"
    Image.fromarray(gray).save(path)
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == (3, 4, 3)
    for channel in range(3):
        np.testing.assert_array_equal(out[:, :, channel], gray)


def test_palette_image_is_expanded_through_its_palette(tmp_path):
    palette_img = Image.new("P", (2, 1))
    palette_img.putpalette([10, 20, 30, 200, 100, 50] + [0] * (256 * 3 - 6))
    palette_img.putpixel((0, 0), 0)
    palette_img.putpixel((1, 0), 1)
    path = tmp_path / "palette.png"
    palette_img.save(path)
    out = read_image(path)
    np.testing.assert_array_equal(out[0, 0], [10, 20, 30])
    np.testing.assert_array_equal(out[0, 1], [200, 100, 50])


def test_rgba_is_composited_on_white():
    rgba = np.zeros((1, 3, 4), dtype=np.uint8)
    rgba[0, 0] = [255, 0, 0, 255]  # opaque red
    rgba[0, 1] = [0, 0, 0, 0]  # fully transparent (black underneath)
    rgba[0, 2] = [0, 0, 0, 128]  # half-transparent black
    out = decode_image(encode(Image.fromarray(rgba)), max_pixels=None)
    np.testing.assert_array_equal(out[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(out[0, 1], [255, 255, 255])
    assert np.all(np.abs(out[0, 2].astype(int) - 127) <= 1)


def test_gray_alpha_is_composited_on_white():
    la = Image.fromarray(np.array([[[50, 0], [50, 255]]], dtype=np.uint8), mode="LA")
    out = decode_image(encode(la), max_pixels=None)
    np.testing.assert_array_equal(out[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(out[0, 1], [50, 50, 50])


def test_16bit_grayscale_png_is_scaled_not_clipped(tmp_path):
    levels = np.array([[0, 257 * 100, 257 * 200, 65535]], dtype=np.uint16)
    path = tmp_path / "gray16.png"
    Image.fromarray(levels).save(path)
    assert Image.open(path).mode.startswith("I")
    out = read_image(path)
    np.testing.assert_array_equal(out[0, :, 0], [0, 100, 200, 255])


def test_16bit_rgb_png_is_scaled_to_8bit():
    samples = [(0, 257 * 100, 65535), (0x8000, 257 * 37, 257 * 255)]
    row = b"".join(struct.pack(">HHH", *pixel) for pixel in samples)
    out = decode_image(png_bytes(2, 1, 16, 2, [row]), max_pixels=None)
    np.testing.assert_array_equal(out[0, 0], [0, 100, 255])
    np.testing.assert_array_equal(out[0, 1], [128, 37, 255])


def test_exif_orientation_is_applied(tmp_path):
    # Stored 40 wide and 20 high: red on the left, blue on the right.
    stored = np.zeros((20, 40, 3), dtype=np.uint8)
    stored[:, :20] = [255, 0, 0]
    stored[:, 20:] = [0, 0, 255]
    img = Image.fromarray(stored)
    exif = img.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    img.save(path, quality=95, exif=exif.tobytes())

    out = read_image(path)
    assert out.shape == (40, 20, 3)
    top, bottom = out[:15].reshape(-1, 3).mean(0), out[25:].reshape(-1, 3).mean(0)
    assert top[0] > 200 and top[2] < 60  # the stored left (red) side is now on top
    assert bottom[2] > 200 and bottom[0] < 60


def test_non_image_bytes_raise_decode_error():
    with pytest.raises(ImageDecodeError):
        decode_image(b"this is certainly not an image", max_pixels=10**6)
    with pytest.raises(ImageDecodeError):
        decode_image(b"", max_pixels=10**6)
    assert issubclass(ImageDecodeError, ValueError)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_image_raises_decode_error(fmt):
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    data = encode(noise, fmt)
    assert decode_image(data, max_pixels=None).shape == (64, 64, 3)
    with pytest.raises(ImageDecodeError):
        decode_image(data[: len(data) // 2], max_pixels=None)


def test_corrupt_and_missing_files(tmp_path):
    rng = np.random.default_rng(1)
    data = encode(Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)), "JPEG")
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageDecodeError, match="corrupt.jpg"):
        read_image(corrupt)
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "absent.png")


@pytest.fixture
def load_calls(monkeypatch):
    """Counts full decodes (ImageFile.load) done by Pillow."""
    calls = []
    original = ImageFile.ImageFile.load

    def counting_load(self):
        calls.append(self.size)
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)
    return calls


def test_bomb_header_is_refused_before_decoding(load_calls):
    # A genuine 1x1 PNG whose IHDR is patched to declare 100000 x 100000 pixels.
    data = bytearray(encode(Image.new("RGB", (1, 1))))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", 100_000, 100_000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    for limit in (10**6, None):  # our budget, or Pillow's own bomb limit
        with pytest.raises(ImageTooLargeError, match="10000000000 pixels"):
            decode_image(bytes(data), max_pixels=limit)
    assert load_calls == []


def test_large_compressible_image_respects_budget(load_calls):
    data = encode(Image.new("1", (3000, 3000)))  # 9 Mpixel but a few kB
    assert len(data) < 50_000
    with pytest.raises(ImageTooLargeError):
        decode_image(data, max_pixels=1_000_000)
    assert load_calls == []
    out = decode_image(data, max_pixels=9_000_000)  # exactly at the budget is allowed
    assert out.shape == (3000, 3000, 3) and out.max() == 0


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_pillow_warning_zone_is_refused(monkeypatch):
    # Between MAX_IMAGE_PIXELS and twice that, Pillow only warns; we refuse.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    data = encode(Image.new("RGB", (40, 40)))
    with pytest.raises(ImageTooLargeError):
        decode_image(data, max_pixels=None)
    assert decode_image(encode(Image.new("RGB", (30, 30))), max_pixels=None).shape == (30, 30, 3)


def test_tensor_round_trip_and_ranges():
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    tensor = to_tensor(img)
    assert tensor.shape == (3, 5, 7) and tensor.dtype == torch.float32
    assert torch.equal(tensor[1, 2, 3], torch.tensor(img[2, 3, 1] / 255.0, dtype=torch.float32))
    np.testing.assert_array_equal(to_uint8(tensor), img)
    np.testing.assert_array_equal(to_uint8(tensor[None]), img)

    out_of_range = torch.tensor([-0.5, 0.5, 1.7, 0.1 / 255]).reshape(1, 1, 4).expand(3, 1, 4)
    np.testing.assert_array_equal(to_uint8(out_of_range)[0, :, 0], [0, 128, 255, 0])


def test_tensor_conversions_reject_bad_shapes():
    with pytest.raises(ValueError, match="shape"):
        to_tensor(np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        to_tensor(np.zeros((4, 4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        to_uint8(torch.zeros(4, 4, 3))


def test_save_image_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)
    save_image(tmp_path / "sub" / "from_tensor.png", to_tensor(img))
    save_image(tmp_path / "from_array.png", img)
    np.testing.assert_array_equal(read_image(tmp_path / "sub" / "from_tensor.png"), img)
    np.testing.assert_array_equal(read_image(tmp_path / "from_array.png"), img)
    with pytest.raises(ValueError):
        save_image(tmp_path / "bad.png", np.zeros((6, 9), dtype=np.uint8))


def test_to_uint8_matches_rounding_across_row_blocks() -> None:
    # Taller than one conversion block, with a ragged last block.
    t = torch.rand(3, 1100, 7) * 1.2 - 0.1
    expected = (t.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    out = to_uint8(t[None])
    assert out.dtype == np.uint8 and out.shape == (1100, 7, 3)
    assert np.array_equal(out, expected)


def test_encode_png_is_lossless_at_every_level() -> None:
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (20, 31, 3), dtype=np.uint8)
    for level in (0, 3, 9):
        data = encode_png(img, compress_level=level)
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        np.testing.assert_array_equal(decode_image(data, None), img)
    # A flat image compresses: level 3 is far smaller than the raw pixels.
    assert len(encode_png(np.zeros((64, 64, 3), dtype=np.uint8))) < 64 * 64 * 3 // 10


def test_encode_png_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="uint8"):
        encode_png(np.zeros((4, 4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        encode_png(np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="compress_level"):
        encode_png(np.zeros((4, 4, 3), dtype=np.uint8), compress_level=10)
