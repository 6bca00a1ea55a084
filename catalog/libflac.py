"""FLAC encoding straight through the system's libFLAC, without the MD5 signature.

libsndfile (soundfile) always has libFLAC hash the audio into STREAMINFO's MD5, which costs a
sixth (scene audio) to a third (smooth audio) of the encoding time at compression level 0, and at dataset scale the
encoder is what bounds throughput. Shards do not need it: their Parquet pages carry CRC checksums
(`catalog.shards`) that cover the bytes. The FLAC spec allows an all-zero MD5 ("not computed"); every decoder reads the
frames the same. `available()` is False where libFLAC is not installed (Debian: the
``flac`` package; macOS: ``brew install flac``); `catalog.audio.encode_flac` then encodes
through libsndfile: the same samples and stream parameters, with the MD5.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import tempfile
from functools import lru_cache

import numpy as np

__all__ = ["available", "encode"]

_UINT_SETTERS = ("channels", "bits_per_sample", "sample_rate", "compression_level", "do_md5")


@lru_cache(maxsize=1)
def _lib() -> tuple[ctypes.CDLL, ctypes.CDLL] | None:
    """(libFLAC, libc) with the prototypes used here, or None."""
    name = ctypes.util.find_library("FLAC")
    if name is None:
        return None
    try:
        lib, libc = ctypes.CDLL(name), ctypes.CDLL(None)
        lib.FLAC__stream_encoder_new.restype = ctypes.c_void_p
        for setter in _UINT_SETTERS:
            fn = getattr(lib, f"FLAC__stream_encoder_set_{setter}")
            fn.argtypes, fn.restype = [ctypes.c_void_p, ctypes.c_uint], ctypes.c_int
        lib.FLAC__stream_encoder_set_total_samples_estimate.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
        lib.FLAC__stream_encoder_init_FILE.argtypes = [ctypes.c_void_p] * 4
        lib.FLAC__stream_encoder_init_FILE.restype = ctypes.c_int
        lib.FLAC__stream_encoder_process_interleaved.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint]
        lib.FLAC__stream_encoder_process_interleaved.restype = ctypes.c_int
        lib.FLAC__stream_encoder_get_state.argtypes = [ctypes.c_void_p]
        lib.FLAC__stream_encoder_get_state.restype = ctypes.c_int
        lib.FLAC__stream_encoder_finish.argtypes = [ctypes.c_void_p]
        lib.FLAC__stream_encoder_finish.restype = ctypes.c_int
        lib.FLAC__stream_encoder_delete.argtypes = [ctypes.c_void_p]
        libc.fdopen.argtypes, libc.fdopen.restype = [ctypes.c_int, ctypes.c_char_p], ctypes.c_void_p
        libc.fclose.argtypes = [ctypes.c_void_p]
    except (OSError, AttributeError):  # an unloadable or pre-1.2 library: libsndfile instead
        return None
    return lib, libc


def available() -> bool:
    """Whether libFLAC can be called directly on this machine."""
    return _lib() is not None


def encode(pcm: np.ndarray, sample_rate: int, bits: int, compression_level: int) -> bytes:
    """Integer PCM ``(time, channels)`` (values in the signed `bits` range) as FLAC bytes, no MD5.

    STREAMINFO carries the exact sample count; its min/max frame sizes are 0 ("unknown"), as
    for any stream written without seeking back."""
    libs = _lib()
    if libs is None:
        raise RuntimeError("libFLAC is not installed: install it (Debian: apt-get install flac) or encode "
                           "through catalog.encode_flac, which falls back to libsndfile")
    lib, libc = libs
    frames, channels = pcm.shape
    data = np.ascontiguousarray(pcm, dtype=np.int32)
    # libFLAC writes into an anonymous in-memory file (a FILE on a dup of its descriptor): no Python call
    # per frame, and it can seek back to complete STREAMINFO as it does in a file.
    scratch = _scratch_file()
    stream = libc.fdopen(os.dup(scratch.fileno()), b"w+b")
    if not stream:
        scratch.close()
        raise OSError("fdopen failed for libFLAC's output")
    with scratch:
        encoder = lib.FLAC__stream_encoder_new()
        try:
            if not encoder:
                raise MemoryError("libFLAC could not allocate an encoder")
            for setter, value in zip(_UINT_SETTERS, (channels, bits, sample_rate, compression_level, 0)):
                getattr(lib, f"FLAC__stream_encoder_set_{setter}")(encoder, value)
            lib.FLAC__stream_encoder_set_total_samples_estimate(encoder, frames)
            # From here the encoder owns the stream and closes it when it finishes (or is deleted, even after a
            # failed init): closing it here too would close it twice.
            owned, stream = stream, None
            status = lib.FLAC__stream_encoder_init_FILE(encoder, owned, None, None)
            if status != 0:
                raise ValueError(f"libFLAC refused the stream ({channels} channels, {bits} bits, {sample_rate} Hz): "
                                 f"init status {status}")
            ok = lib.FLAC__stream_encoder_process_interleaved(encoder, data.ctypes.data, frames)
            if not (ok and lib.FLAC__stream_encoder_finish(encoder)):
                raise RuntimeError(f"libFLAC failed to encode: encoder state {lib.FLAC__stream_encoder_get_state(encoder)}")
        finally:
            if encoder:
                lib.FLAC__stream_encoder_delete(encoder)  # finishes (and closes the stream) if still open
            if stream:
                libc.fclose(stream)
        scratch.seek(0)
        return scratch.read()


def _scratch_file():
    """An unnamed read-write file in memory (Linux memfd), or an unlinked temporary file elsewhere."""
    if hasattr(os, "memfd_create"):
        return os.fdopen(os.memfd_create("roomtone-flac", os.MFD_CLOEXEC), "w+b")
    return tempfile.TemporaryFile()
