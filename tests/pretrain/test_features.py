"""Model inputs: Kaldi fbank against kaldi-native-fbank, presets, SELD intensity vectors, augmentation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.signal import resample_poly

from catalog.errors import RoomtoneError
from pretrain.features import PRESETS, fbank, kaldi_fbank, mixup, seld_features, spec_augment
from tests.helpers import SONIC_PI
from simulation import Room, direct_path_labels, foa, simulate

knf = pytest.importorskip("kaldi_native_fbank")

EPS_LOG = math.log(np.finfo(np.float32).eps)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/pretrain/conftest.py


def _clip(name: str, seconds: float = 2.0) -> np.ndarray:
    """A real recording as 16 kHz mono float32 in [-1, 1]."""
    audio, rate = sf.read(SONIC_PI / name, dtype="float32", always_2d=True)
    mono = audio.mean(1)
    g = math.gcd(16000, rate)
    return resample_poly(mono, 16000 // g, rate // g).astype(np.float32)[: int(16000 * seconds)]


def _knf(x: np.ndarray, window: str, bins: int, low: float, high: float) -> np.ndarray:
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.window_type = window
    opts.mel_opts.num_bins, opts.mel_opts.low_freq, opts.mel_opts.high_freq = bins, low, high
    f = knf.OnlineFbank(opts)
    f.accept_waveform(16000, x.tolist())
    f.input_finished()
    return np.stack([f.get_frame(i) for i in range(f.num_frames_ready)])


def _knf_128(x: np.ndarray, window: str) -> np.ndarray:
    """kaldi-native-fbank's 128-bin answer, assembled from two runs with the same bin edges.

    Kaldi refuses 128 bins at 16 kHz with a 512-point FFT because bin 3 (about 50-76 Hz) holds
    no FFT point; torchaudio (what SSAST and BEATs ran) returns log(eps) there. Bins 0-2 and
    4-127 have edges on the same uniform mel grid as (20 Hz .. edge of bin 4) with 3 bins and
    (edge .. Nyquist) with 124 bins, which Kaldi accepts.
    """
    mel = lambda f: 1127 * math.log1p(f / 700)  # noqa: E731
    hz = lambda m: 700 * math.expm1(m / 1127)  # noqa: E731
    delta = (mel(8000) - mel(20)) / 129
    edge = hz(mel(20) + 4 * delta)
    low, high = _knf(x, window, 3, 20, edge), _knf(x, window, 124, edge, 0)
    return np.concatenate([low, np.full((len(low), 1), EPS_LOG, np.float32), high], 1)


def _assert_close(ours: np.ndarray, ref: np.ndarray) -> None:
    """Relative to the log-mel range (elementwise relative error is meaningless near log 1 = 0,
    where float32 round-off in near-silent bins reaches a few 1e-3 absolute, in kaldi-native-fbank too)."""
    assert ours.shape == ref.shape
    err = np.abs(ours - ref)
    assert err.max() <= 1e-3 * np.abs(ref).max(), err.max()
    assert np.linalg.norm(ours - ref) <= 1e-4 * np.linalg.norm(ref)


# (window, scale, remove mean) of the BEATs and SSAST presets
KALDI_OPTIONS = [("povey", 2.0**15, False), ("hanning", 1.0, True)]


@pytest.mark.parametrize("window,scale,remove_mean", KALDI_OPTIONS)
@pytest.mark.parametrize("source", ["ambi_choir.flac", "ambi_drone.flac", "noise"])
def test_kaldi_fbank_matches_kaldi_native_fbank(source, window, scale, remove_mean):
    if source == "noise":
        x = np.random.default_rng(3).uniform(-1, 1, 24000).astype(np.float32)
    else:
        x = _clip(source)
        assert np.abs(x).max() > 1e-3  # a real, non-silent recording
    x = x * np.float32(scale)
    if remove_mean:
        x = x - x.mean()
    ours = kaldi_fbank(torch.from_numpy(x)[None], 16000, window=window)[0].numpy()
    _assert_close(ours, _knf_128(x, window))


def test_fewer_bins_match_directly():
    x = _clip("ambi_choir.flac", 1.0) * np.float32(2.0**15)
    ours = kaldi_fbank(torch.from_numpy(x)[None], 16000, num_mel_bins=80)[0].numpy()
    _assert_close(ours, _knf(x, "povey", 80, 20, 0))


def test_presets_apply_their_conventions():
    wave = torch.from_numpy(np.stack([_clip("ambi_choir.flac", 1.0), _clip("ambi_drone.flac", 1.0)]))
    beats = fbank(wave, 16000, "beats")
    raw = kaldi_fbank(wave * 2.0**15, 16000, window="povey")
    torch.testing.assert_close(beats, (raw - 15.41663) / (2 * 6.55582))

    ssast = fbank(wave, 16000, "ssast")
    assert ssast.shape == (2, 1024, 128)  # 98 frames, zero-padded (in log space) before normalising
    centred = wave - wave.mean(1, keepdim=True)
    raw = kaldi_fbank(centred, 16000, window="hanning")
    torch.testing.assert_close(ssast[:, :98], (raw + 4.2677393) / (2 * 4.5689974))
    assert torch.allclose(ssast[:, 98:], torch.tensor(4.2677393 / (2 * 4.5689974)))
    cut = fbank(wave, 16000, PRESETS["ssast"].with_(target_frames=50))
    torch.testing.assert_close(cut, ssast[:, :50])


def test_fbank_is_batch_consistent_and_runs_in_float64():
    wave = torch.rand(3, 8000, dtype=torch.float64) * 2 - 1
    batched = fbank(wave, 16000, "beats")
    single = torch.cat([fbank(w[None], 16000, "beats") for w in wave])
    torch.testing.assert_close(batched, single)
    assert kaldi_fbank(wave, 16000).dtype == torch.float64


@pytest.mark.parametrize("call,match", [
    (lambda: fbank(torch.zeros(8000), 16000), "batch, samples"),
    (lambda: fbank(torch.zeros(1, 8000), 44100, "ssast"), "16000 Hz"),
    (lambda: fbank(torch.zeros(1, 8000), 16000, "nope"), "unknown fbank preset"),
    (lambda: seld_features(torch.zeros(1, 2, 8000), 24000), "batch, 4, samples"),
])
def test_bad_input_is_refused_with_a_clear_message(call, match):
    with pytest.raises(RoomtoneError, match=match):
        call()
    with pytest.raises(ValueError, match="at least 400 samples"):
        kaldi_fbank(torch.zeros(1, 100), 16000)


def test_seld_intensity_vectors_point_at_the_source():
    rate = 24000
    room = Room.from_rt60((8.0, 6.0, 3.5), 0.2, seed=1)
    center, src = (4.0, 3.0, 1.5), [[6.0, 4.5, 2.3]]
    rir = simulate(room, src, foa(center), fs=rate, duration=0.3)[0, 0]  # (4, samples), W Y Z X
    noise = torch.from_numpy(np.random.default_rng(0).standard_normal(rate)).float()
    scene = torch.stack([torch.from_numpy(np.convolve(noise.numpy(), h.numpy())[:rate]) for h in rir]).float()
    feats = seld_features(scene[None], rate)
    assert feats.shape == (1, 7, rate // 240 + 1, 64)
    assert torch.isfinite(feats).all()
    iy, iz, ix = (feats[0, c].mean() for c in (4, 5, 6))
    azimuth = math.degrees(math.atan2(iy, ix))
    elevation = math.degrees(math.atan2(iz, math.hypot(ix, iy)))
    az, el, _ = direct_path_labels(np.array(src), np.array([center]))
    assert abs(azimuth - float(np.ravel(az)[0])) < 10
    assert abs(elevation - float(np.ravel(el)[0])) < 10


def test_seld_features_match_a_numpy_stft_reference():
    """The whole PSELDNets input against numpy: reflect-padded centred frames, periodic Hann,
    rfft, per-channel dB log-mels and unit intensity vectors on librosa's HTK/Slaney banks."""
    librosa = pytest.importorskip("librosa")
    rate, n_fft, hop = 24000, 1024, 240
    wave = np.random.default_rng(3).standard_normal((2, 4, rate // 2)) * np.array([0.3, 0.1, 0.05, 0.2])[:, None]
    padded = np.pad(wave, ((0, 0), (0, 0), (n_fft // 2, n_fft // 2)), mode="reflect")
    starts = np.arange(0, padded.shape[-1] - n_fft + 1, hop)
    frames = padded[..., starts[:, None] + np.arange(n_fft)] * np.hanning(n_fft + 1)[:-1]  # periodic Hann
    spec = np.fft.rfft(frames)  # (B, 4, frames, bins)
    banks = librosa.filters.mel(sr=rate, n_fft=n_fft, n_mels=64, fmin=20, fmax=rate / 2, htk=True, norm="slaney")
    logmel = 10 * np.log10(np.maximum(np.abs(spec) ** 2 @ banks.T, 1e-10))
    intensity = np.real(np.conj(spec[:, :1]) * spec[:, 1:])
    unit = intensity / (np.linalg.norm(intensity, axis=1, keepdims=True) + np.finfo(np.float32).eps)
    ref = np.concatenate([logmel, unit @ banks.T], 1)
    ours = seld_features(torch.from_numpy(wave), rate).numpy()
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours[:, :4], ref[:, :4], atol=1e-4)  # dB
    np.testing.assert_allclose(ours[:, 4:], ref[:, 4:], atol=1e-6)  # unit vectors on banks of ~0.01


def test_features_come_out_the_same_to_the_bit_whatever_the_batch():
    """On a CPU the features run a few clips at a time (to stay in cache); a clip's features must
    not depend on the batch it lands in, which the loader's seeded determinism relies on."""
    g = torch.Generator().manual_seed(0)
    clips = torch.randn(3, 163840, generator=g) * 0.1  # 3 x 1022 frames: chunks of 2 and 1
    assert torch.equal(fbank(clips, 16000), torch.cat([fbank(c[None], 16000) for c in clips]))
    foa_clips = torch.randn(3, 4, 24000 * 3, generator=g) * 0.1
    assert torch.equal(seld_features(foa_clips, 24000), torch.cat([seld_features(c[None], 24000) for c in foa_clips]))


def test_seld_mel_banks_are_htk_scale_with_slaney_norm():
    """PSELDNets' torchaudio MelScale(norm="slaney") uses the HTK scale; librosa's htk=True is the same bank."""
    librosa = pytest.importorskip("librosa")
    from pretrain.features import _slaney_norm_mel_banks

    ref = librosa.filters.mel(sr=24000, n_fft=1024, n_mels=64, fmin=20, fmax=12000, htk=True, norm="slaney")
    np.testing.assert_allclose(_slaney_norm_mel_banks(64, 1024, 24000, 20).numpy(), ref, atol=1e-6)


def test_spec_augment_is_seeded_and_masks_stripes():
    x = torch.ones(4, 200, 64)
    a = spec_augment(x, torch.Generator().manual_seed(1))
    b = spec_augment(x, torch.Generator().manual_seed(1))
    c = spec_augment(x, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert (a == 0).any() and (a == 1).any()
    # a zeroed cell lies on a fully zeroed time row or frequency column
    zero = a == 0
    assert (zero.all(2, keepdim=True) | zero.all(1, keepdim=True))[zero].all()
    assert spec_augment(torch.ones(2, 7, 100, 64), torch.Generator().manual_seed(0)).shape == (2, 7, 100, 64)


def test_mixup_is_seeded_and_convex():
    x = torch.arange(4.0)[:, None].expand(4, 10)
    y = torch.eye(4)
    mx, my = mixup(x, y, torch.Generator().manual_seed(5))
    mx2, my2 = mixup(x, y, torch.Generator().manual_seed(5))
    assert torch.equal(mx, mx2) and torch.equal(my, my2)
    torch.testing.assert_close(my.sum(1), torch.ones(4))  # mixed multi-hot stays a distribution
    assert (my >= 0).all() and (mx >= 0).all() and (mx <= 3).all()
    torch.testing.assert_close(mx[:, 0], my @ torch.arange(4.0))  # same lam and partner for x and y
