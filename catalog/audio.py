"""Encoded audio cells: what goes into the Hugging Face ``struct<bytes, path>`` column."""

from __future__ import annotations

import io

import miniaudio
import numpy as np
import soundfile as sf

FLAC_SUBTYPES = {16: "PCM_16", 24: "PCM_24"}
# Level 0 encodes about 1.25x faster than libsndfile's default for 0.2 % larger scene files:
# at dataset scale the encoder, not storage, is what bounds throughput.
FLAC_COMPRESSION_LEVEL = 0.0
# dr_flac's reader for each output dtype (float64 is exact from float32: at most 24-bit PCM)
_FLAC_READERS = {"float32": ("flac_read_f32", np.float32), "float64": ("flac_read_f32", np.float32),
                 "int16": ("flac_read_s16", np.int16), "int32": ("flac_read_s32", np.int32)}


def encode_flac(samples: np.ndarray, sample_rate: int, bits: int = 16) -> bytes:
    """Encode float samples in [-1, 1], shaped ``(time,)`` or ``(time, channels)``, as FLAC.

    Samples are clipped to the PCM range, so the decoded audio is exactly the quantised
    input and nothing wraps around. 16-bit audio is quantised here exactly as
    libsndfile would (round(x * 32768), clipped), which is 1.3x faster than letting it convert.
    """
    if bits not in FLAC_SUBTYPES:
        raise ValueError(f"bits={bits} is not supported: FLAC shards use 16 or 24 bits")
    samples = np.asarray(samples)
    if samples.ndim not in (1, 2) or samples.shape[0] == 0:
        raise ValueError(f"samples must be (time,) or (time, channels) and non-empty, got {samples.shape}")
    if not np.isfinite(samples).all():
        raise ValueError("samples contain NaN or infinity; FLAC cannot store them")
    if bits == 16:  # scale, round half to even, clip: in place on one copy (a 60 s scene: 2x faster)
        # The copy is C-ordered, the interleaved frames libsndfile takes: a transposed (channels, time)
        # clip is reordered by this first pass instead of by a copy of the int16 result (16 -> 9 ms a scene).
        scaled = np.empty(samples.shape, dtype=np.float32 if samples.dtype == np.float32 else np.float64)
        np.multiply(samples, 32768.0, out=scaled)
        np.rint(scaled, out=scaled)
        samples = np.clip(scaled, -32768, 32767, out=scaled).astype(np.int16)
    else:
        samples = np.clip(samples, -1.0, 1.0)
    buf = io.BytesIO()
    sf.write(buf, samples, sample_rate, format="FLAC", subtype=FLAC_SUBTYPES[bits],
             compression_level=FLAC_COMPRESSION_LEVEL)
    return buf.getvalue()


def decode_audio(data: bytes, dtype: str = "float32") -> tuple[np.ndarray, int]:
    """Decode FLAC/WAV/OGG bytes to ``(time, channels)`` samples and the sample rate.

    dtype: float32/float64 (full scale 1.0) or int16/int32 (PCM, left-aligned as libsndfile
    gives it). FLAC, what every shard holds, goes through dr_flac (miniaudio): 2.6x faster
    than libsndfile here and the same samples to the bit. Training loaders decode every
    clip every epoch.
    """
    if dtype not in _FLAC_READERS:
        raise ValueError(f"dtype={dtype!r}: audio decodes to one of {sorted(_FLAC_READERS)}")
    if data[:4] == b"fLaC":
        reader, decoded = _FLAC_READERS[dtype]
        try:
            flac = getattr(miniaudio, reader)(data)
        except miniaudio.DecodeError as exc:
            raise RuntimeError(f"FLAC data could not be decoded: {exc}") from exc
        samples = np.frombuffer(flac.samples, dtype=decoded).reshape(-1, flac.nchannels)
        return samples.astype(dtype, copy=False), flac.sample_rate
    samples, rate = sf.read(io.BytesIO(data), dtype=dtype, always_2d=True)
    return samples, rate


def audio_cell(data: bytes, path: str) -> dict:
    """One value of the HF audio column: the encoded file and a name kept for provenance."""
    return {"bytes": data, "path": path}
