"""FLAC encoding straight through the system's libFLAC, without the MD5 signature.

libsndfile (soundfile) always has libFLAC hash the audio into STREAMINFO's MD5, which costs a
sixth (scene audio) to a third (smooth audio) of the encoding time at compression level 0, and
at dataset scale the encoder is what bounds throughput. Shards do not need it: their Parquet
pages carry CRC checksums (`catalog.shards`) that cover the bytes. The FLAC spec allows an
all-zero MD5 ("not computed"); every decoder reads the frames the same. `available()` is False
where libFLAC is not installed (Debian: the ``flac`` package; macOS: ``brew install flac``);
`catalog.audio.encode_flac` then encodes through libsndfile: the same samples, with the MD5 and
level 0's 1152-sample frames.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache

import numpy as np

__all__ = ["available", "encode"]

# The stream callbacks (FLAC/stream_encoder.h): write(encoder, buffer, bytes, samples, current_frame,
# client), seek(encoder, absolute_offset, client), tell(encoder, *absolute_offset, client).
_WRITE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint32,
                          ctypes.c_uint32, ctypes.c_void_p)
_SEEK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p)
_TELL = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint64), ctypes.c_void_p)
_UINT_SETTERS = ("channels", "bits_per_sample", "sample_rate", "compression_level", "blocksize", "do_md5")


@lru_cache(maxsize=1)
def _lib() -> ctypes.CDLL | None:
    """libFLAC with the prototypes used here, or None."""
    name = ctypes.util.find_library("FLAC")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
        lib.FLAC__stream_encoder_new.restype = ctypes.c_void_p
        for setter in _UINT_SETTERS:
            fn = getattr(lib, f"FLAC__stream_encoder_set_{setter}")
            fn.argtypes, fn.restype = [ctypes.c_void_p, ctypes.c_uint], ctypes.c_int
        lib.FLAC__stream_encoder_set_total_samples_estimate.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
        lib.FLAC__stream_encoder_init_stream.argtypes = [ctypes.c_void_p, _WRITE, _SEEK, _TELL, ctypes.c_void_p,
                                                         ctypes.c_void_p]
        lib.FLAC__stream_encoder_init_stream.restype = ctypes.c_int
        for process in (lib.FLAC__stream_encoder_process, lib.FLAC__stream_encoder_process_interleaved):
            process.argtypes, process.restype = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint], ctypes.c_int
        lib.FLAC__stream_encoder_get_state.argtypes = [ctypes.c_void_p]
        lib.FLAC__stream_encoder_get_state.restype = ctypes.c_int
        lib.FLAC__stream_encoder_finish.argtypes = [ctypes.c_void_p]
        lib.FLAC__stream_encoder_finish.restype = ctypes.c_int
        lib.FLAC__stream_encoder_delete.argtypes = [ctypes.c_void_p]
    except (OSError, AttributeError):  # an unloadable or pre-1.2 library: libsndfile instead
        return None
    return lib


def available() -> bool:
    """Whether libFLAC can be called directly on this machine."""
    return _lib() is not None


def encode(pcm: np.ndarray, sample_rate: int, bits: int, compression_level: int, blocksize: int = 0) -> bytes:
    """Integer PCM ``(time, channels)`` (values in the signed `bits` range) as FLAC bytes, no MD5.

    blocksize: samples per FLAC frame (0: the compression level's own). PCM stored channel by channel
    (the transpose of a C-ordered ``(channels, time)`` array, as scenes are rendered) goes to libFLAC
    as one buffer per channel, so it is never interleaved: interleaving a 60 s FOA scene while
    quantising it had made quantising and encoding it 1.14x slower (82 against 72 ms).

    libFLAC writes into a bytearray through seekable stream callbacks, as into a file: it seeks
    back at the end to complete STREAMINFO (frame sizes, sample count). One call per frame and
    no system calls (an in-memory file had cost two per frame: 10 % slower)."""
    lib = _lib()
    if lib is None:
        raise RuntimeError("libFLAC is not installed: install it (Debian: apt-get install flac) or encode "
                           "through catalog.encode_flac, which falls back to libsndfile")
    frames, channels = pcm.shape
    planar = pcm.dtype == np.int32 and pcm.T.flags.c_contiguous
    data = pcm.T if planar else np.ascontiguousarray(pcm, dtype=np.int32)
    out, position = bytearray(), [0]

    @_WRITE
    def write(_encoder, buffer, size, _samples, _frame, _client):
        at = position[0]
        out[at:at + size] = ctypes.string_at(buffer, size)
        position[0] = at + size
        return 0  # FLAC__STREAM_ENCODER_WRITE_STATUS_OK

    @_SEEK
    def seek(_encoder, offset, _client):
        position[0] = offset
        return 0  # FLAC__STREAM_ENCODER_SEEK_STATUS_OK

    @_TELL
    def tell(_encoder, offset, _client):
        offset[0] = position[0]
        return 0  # FLAC__STREAM_ENCODER_TELL_STATUS_OK

    encoder = lib.FLAC__stream_encoder_new()
    if not encoder:
        raise MemoryError("libFLAC could not allocate an encoder")
    try:
        for setter, value in zip(_UINT_SETTERS, (channels, bits, sample_rate, compression_level, blocksize, 0)):
            if setter != "blocksize" or value:  # after the level, which sets its own
                getattr(lib, f"FLAC__stream_encoder_set_{setter}")(encoder, value)
        lib.FLAC__stream_encoder_set_total_samples_estimate(encoder, frames)
        status = lib.FLAC__stream_encoder_init_stream(encoder, write, seek, tell, None, None)
        if status != 0:
            raise ValueError(f"libFLAC refused the stream ({channels} channels, {bits} bits, {sample_rate} Hz): "
                             f"init status {status}")
        if planar:
            ok = lib.FLAC__stream_encoder_process(encoder, (ctypes.c_void_p * channels)(*(c.ctypes.data for c in data)),
                                                  frames)
        else:
            ok = lib.FLAC__stream_encoder_process_interleaved(encoder, data.ctypes.data, frames)
        if not (ok and lib.FLAC__stream_encoder_finish(encoder)):
            raise RuntimeError(f"libFLAC failed to encode: encoder state {lib.FLAC__stream_encoder_get_state(encoder)}")
    finally:
        lib.FLAC__stream_encoder_delete(encoder)
    return bytes(out)
