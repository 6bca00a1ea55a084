"""Objectives built from the registry: forward, backward, determinism, masking, losses, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from catalog.errors import RoomtoneError
from pretrain.models import adpit_loss, create_model, list_models
from pretrain.models.beats import _buckets
from pretrain.models.masking import cluster_mask, mask_count
from pretrain.models.ssast import info_nce
from pretrain.models.tokenizer import NormEMAVectorQuantizer
from simulation.seld import SeldLabels, adpit_target

TINY = [n for n in list_models() if n.endswith("-tiny")]
FAMILIES = {n.rsplit("-", 1)[0] for n in list_models()}


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/pretrain/conftest.py


def _build(name: str, **overrides) -> torch.nn.Module:
    overrides.setdefault("seed", 0)
    if name.startswith("beats-tokenizer"):
        overrides.setdefault("teacher", create_model(name.replace("-tokenizer", ""), seed=9).encoder)
    if name.startswith("tagging"):
        overrides.setdefault("num_classes", 5)
    return create_model(name, **overrides)


def _batch(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    if name.startswith("seld"):
        labels = SeldLabels.from_events([(0, 1, 0, 30.0, 10.0), (3, 1, 0, -60.0, 0.0), (3, 1, 1, 90.0, 5.0)], n_frames=8)
        target = torch.from_numpy(adpit_target(labels, 13)).float()
        return {"fbank": torch.randn(2, 7, 80, 64, generator=g), "target": target.expand(2, -1, -1, -1, -1)}
    batch = {"fbank": torch.randn(2, 96, 128, generator=g)}
    if name.startswith("tagging"):
        batch["target"] = (torch.rand(2, 5, generator=g) > 0.5).float()
    return batch


def test_registry_lists_every_family_and_size():
    assert {"ssast", "beats", "beats-tokenizer", "tagging", "seld"} <= FAMILIES
    assert {f"{f}-{s}" for f in FAMILIES for s in ("tiny", "small", "base")} == set(list_models())


@pytest.mark.parametrize("name", list_models())
def test_every_model_builds_with_its_size(name):
    with torch.device("meta"):  # shapes only, no memory
        model = _build(name)
    enc = model.config.encoder.model_dump()
    assert enc["size"] == name.rsplit("-", 1)[1]
    assert model.config.model_dump()  # loggable
    assert model.registry_name == name
    width = {"tiny": 128, "small": 384, "base": 768}[enc["size"]]
    assert enc.get("dim", enc.get("encoder_embed_dim")) == width


@pytest.mark.parametrize("name", TINY)
def test_tiny_models_train_and_are_deterministic(name):
    model = _build(name)
    batch = _batch(name)
    out = model(batch, generator=torch.Generator().manual_seed(1))
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    assert all(v.ndim == 0 and torch.isfinite(v) for v in out.values())
    out["loss"].backward()
    grads = [p.grad for p in model.encoder.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0

    again = _build(name)
    for (k, a), b in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b) or k.startswith("tokenizer.quantize"), k  # same seed, same weights
    same = again(batch, generator=torch.Generator().manual_seed(1))
    assert torch.equal(same["loss"], out["loss"])

    x = batch["fbank"]
    tokens = model.encoder(x)
    assert tokens.ndim == 3 and tokens.shape[0] == 2
    assert model.encoder.embed(x).shape == (2, tokens.shape[2])


@pytest.mark.parametrize("name", ["ssast-tiny", "beats-tiny"])
def test_masks_follow_the_generator(name):
    model = _build(name)
    batch = _batch(name)
    a = model(batch, generator=torch.Generator().manual_seed(1))["loss"]
    b = model(batch, generator=torch.Generator().manual_seed(2))["loss"]
    assert not torch.equal(a, b)
    own = [float(_build(name)(batch)["loss"].detach()) for _ in range(2)]  # the model's own seeded generator
    assert own[0] == own[1]


def test_without_a_seed_the_callers_rng_decides_the_weights():
    torch.manual_seed(3)
    a = create_model("ssast-tiny").encoder.pos_embed
    torch.manual_seed(3)
    b = create_model("ssast-tiny").encoder.pos_embed
    c = create_model("ssast-tiny", seed=3).encoder.pos_embed
    state = torch.random.get_rng_state()
    d = create_model("ssast-tiny", seed=3).encoder.pos_embed
    assert torch.equal(a, b) and torch.equal(c, d) and torch.equal(state, torch.random.get_rng_state())


def test_ssast_cluster_masking_counts_and_clusters():
    assert mask_count(512, 400 / 512) == 400
    assert mask_count(8 * 6, 400 / 512) == round(48 * 400 / 512)
    idx = cluster_mask(4, (8, 64), 400, torch.Generator().manual_seed(0))
    assert idx.shape == (4, 400)
    assert all(len(set(row.tolist())) == 400 for row in idx)
    grid = torch.zeros(4, 512, dtype=torch.bool).scatter_(1, idx, True).reshape(4, 8, 64)
    # clustered: a masked patch's right-hand neighbour is masked far more often than the 78 % of chance...
    right = (grid[:, :, :-1] & grid[:, :, 1:]).sum() / grid[:, :, :-1].sum()
    assert right > 0.85
    # ...and draws with another generator differ
    assert not torch.equal(idx, cluster_mask(4, (8, 64), 400, torch.Generator().manual_seed(1)))


def _round_by_round(batch, grid, count, generator, sizes=(3, 4, 5)):
    """The clustered-masking rule one round at a time, as it was first written: the oracle."""
    fp, tp = grid
    first = torch.full((batch, fp, tp), float("inf"))
    f_idx, t_idx = torch.arange(fp)[None, :, None], torch.arange(tp)[None, None, :]
    side = torch.tensor(sizes)[torch.randint(len(sizes), (batch,), generator=generator)][:, None, None]
    tie = torch.rand(batch, fp, tp, generator=generator)
    rounds = 0
    while (first.isfinite().flatten(1).sum(1) < count).any():
        corner = torch.randint(fp * tp, (batch,), generator=generator)
        f0, t0 = (corner // tp)[:, None, None], (corner % tp)[:, None, None]
        block = (f_idx >= f0) & (f_idx < f0 + side) & (t_idx >= t0) & (t_idx < t0 + side)
        first = torch.where(block & first.isinf(), rounds + tie, first)
        rounds += 1
    return first.flatten(1).argsort(1)[:, :count]


@pytest.mark.parametrize("batch,grid,count", [(64, (8, 64), 400), (3, (8, 8), 50), (2, (8, 8), 63), (5, (1, 8), 3),
                                              (1, (2, 2), 1)])
def test_cluster_masks_are_those_of_the_round_by_round_rule_and_leave_the_generator_as_it_did(batch, grid, count):
    """Rounds are applied many at once and the generator set back to the rounds needed: the same
    masks and the same later draws (the second SSAST pass, the next step) as one round at a time."""
    for seed in range(5):
        ours, rule = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
        assert torch.equal(cluster_mask(batch, grid, count, ours), _round_by_round(batch, grid, count, rule))
        assert torch.equal(torch.rand(4, generator=ours), torch.rand(4, generator=rule))


def test_patch_orders():
    """SSAST tokens run f * time_patches + t, BEATs tokens t * 8 + f (reference, section 'Patch order')."""
    t = torch.arange(64)[:, None].expand(64, 128) // 16
    f = torch.arange(128)[None, :].expand(64, 128) // 16
    code = (100 * t + f).float()[None]  # (1, frames, mels): each 16x16 patch holds one value
    ssast = create_model("ssast-tiny").encoder.patches(code)[0, :, 0]
    beats = create_model("beats-tiny").encoder.patches(code)[0, :, 0]
    assert ssast.tolist() == [100 * ti + fi for fi in range(8) for ti in range(4)]
    assert beats.tolist() == [100 * ti + fi for ti in range(4) for fi in range(8)]


def test_ssast_infonce_uses_same_clip_negatives():
    model = _build("ssast-tiny", mse_weight=0.0)
    out = model(_batch("ssast-tiny"), generator=torch.Generator().manual_seed(0))
    m = mask_count(6 * 8, 400 / 512)
    assert abs(float(out["nce"]) - math.log(m)) < 0.5 * math.log(m)  # M-way choice within one clip
    assert float(out["loss"].detach()) == pytest.approx(float(out["nce"]))


def test_info_nce_matches_the_official_per_clip_loop():
    g = torch.Generator().manual_seed(0)
    targets, preds = torch.randn(3, 10, 16, generator=g), torch.randn(3, 10, 16, generator=g)
    nce, correct = 0.0, 0
    for i in range(3):  # the official loop: mm, log-softmax over the last axis, softmax over dim 0 for accuracy
        total = targets[i] @ preds[i].T
        correct += int((total.softmax(0).argmax(0) == torch.arange(10)).sum())
        nce += total.log_softmax(-1).diag().sum()
    ours, acc = info_nce(targets, preds)
    torch.testing.assert_close(ours, nce / (-3 * 10))
    assert float(acc) == pytest.approx(correct / 30)


def test_beats_attention_matches_the_released_scaled_formulation():
    """Ours: SDPA with the gated bias as a mask. Released: q * d^-0.5 / 32, (logits - max) * 32 + bias, softmax."""
    layer = create_model("beats-tiny", seed=0).encoder.encoder.layers[1].self_attn.eval()
    with torch.no_grad():
        layer.grep_a.uniform_(0.5, 1.5)
    b, n, d, h = 2, 12, 128, 4
    x = torch.randn(b, n, d, generator=torch.Generator().manual_seed(1))
    bias = layer.position_bias(torch.arange(n)[None]).expand(b, -1, -1, -1)
    with torch.no_grad():
        ours = layer(x, bias)
        split = lambda t: t.reshape(b, n, h, d // h).transpose(1, 2)  # noqa: E731
        q = split(layer.q_proj(x)) * (d // h) ** -0.5 / 32
        logits = q @ split(layer.k_proj(x)).transpose(-1, -2)
        logits = (logits - logits.amax(-1, keepdim=True)) * 32
        gate_a, gate_b = torch.sigmoid(layer.grep_linear(split(x)).view(b, h, n, 2, 4).sum(-1)).chunk(2, -1)
        logits = logits + (gate_a * (gate_b * layer.grep_a - 1.0) + 2.0) * bias
        ref = (logits.softmax(-1) @ split(layer.v_proj(x))).transpose(1, 2).reshape(b, n, d)
        ref = layer.out_proj(ref)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-4)


def test_beats_relative_bias_is_one_shared_table_and_buckets_are_t5():
    model = create_model("beats-tiny").encoder
    tables = {id(layer.self_attn.relative_attention_bias) for layer in model.encoder.layers}
    assert len(tables) == 1
    keys = [k for k in model.state_dict() if k.endswith("relative_attention_bias.weight")]
    assert len(keys) == len(model.encoder.layers)  # serialised under every layer, as the release
    rel = torch.tensor([-2000, -800, -81, -80, -1, 0, 1, 79, 80, 800, 2000])
    b = _buckets(rel, 320, 800)
    assert b.tolist()[4:8] == [1, 0, 161, 239] and b.max() <= 319
    assert b[0] == b[1] == 159 and b[-1] == b[-2] == 319  # beyond max_distance: the last bucket


def test_norm_ema_quantizer_initialises_and_updates():
    q = NormEMAVectorQuantizer(16, 8, seed=0)
    z = torch.randn(4, 20, 8, generator=torch.Generator().manual_seed(0), requires_grad=True)
    quantized, loss, idx = q(z)
    assert bool(q.embedding.initted) and idx.shape == (4, 20) and int(idx.max()) < 16
    torch.testing.assert_close(q.embedding.weight.norm(dim=-1), torch.ones(16))
    loss.backward()  # straight-through: gradients reach the input
    assert z.grad is not None and z.grad.abs().sum() > 0
    q.eval()
    assert torch.equal(q.codes(z), idx)
    # a training step no longer asks the device whether k-means ran; a loaded state is asked again
    trained = q.state_dict()
    reset = NormEMAVectorQuantizer(16, 8, seed=1)
    reset.train()(z.detach())  # initialised on its first step
    reset.load_state_dict({**trained, "embedding.initted": torch.zeros(1)})
    reset(z.detach())  # not initialised: k-means on this batch, as a new quantizer's first step
    new = NormEMAVectorQuantizer(16, 8, seed=1)
    new.train()(z.detach())
    assert torch.equal(reset.embedding.weight, new.embedding.weight)
    loaded = NormEMAVectorQuantizer(16, 8, seed=1)
    loaded.load_state_dict(trained)
    _, _, again = loaded.train()(z.detach())  # initialised: no k-means; codes from the loaded codebook
    assert torch.equal(again, idx)


def test_beats_iteration_two_uses_the_distilled_tokenizer():
    teacher = create_model("beats-tiny")
    training = create_model("beats-tokenizer-tiny", teacher=teacher.encoder)
    batch = _batch("beats-tiny")
    opt = torch.optim.Adam([p for p in training.parameters() if p.requires_grad], lr=1e-3)
    before = {k: v.clone() for k, v in teacher.encoder.state_dict().items()}
    for _ in range(2):
        opt.zero_grad()
        training(batch)["loss"].backward()
        opt.step()
    assert all(torch.equal(v, teacher.encoder.state_dict()[k]) for k, v in before.items())  # teacher frozen
    with torch.no_grad():
        out = training(batch)
        codes = training.tokenizer.labels(batch["fbank"])
    assert out["codes_used"] == codes.unique().numel()  # counted on the device, same count
    second = create_model("beats-tiny", tokenizer=training.tokenizer)
    assert second.config.tokenizer == "distilled"
    labels = second.labels(batch["fbank"])
    assert torch.equal(labels, training.tokenizer.labels(batch["fbank"]))
    assert torch.isfinite(second(batch)["loss"])
    with pytest.raises(RoomtoneError, match="teacher"):
        create_model("beats-tokenizer-tiny")


def test_adpit_loss_is_permutation_invariant():
    labels = SeldLabels.from_events([(0, 2, 0, 30.0, 0.0), (1, 2, 0, 45.0, 10.0), (1, 2, 1, -90.0, -20.0)], n_frames=2)
    target = torch.from_numpy(adpit_target(labels, 4))[None]
    a0, b0, b1 = torch.from_numpy(labels.unit_vectors())
    out = torch.zeros(1, 2, 3, 3, 4, dtype=torch.float64)
    out[0, 0, :, :, 2] = a0  # one source: all three tracks
    out[0, 1, :, :, 2] = torch.stack([b1, b0, b1])  # two sources: any assignment with one repeated
    assert float(adpit_loss(out, target)) == pytest.approx(0.0, abs=1e-12)
    out[0, 1, :, :, 2] = torch.stack([b0, b1, torch.zeros(3)])  # a silent third track is penalised
    assert float(adpit_loss(out, target)) > 0


def test_seld_adapts_a_mono_pretrained_encoder():
    mono = create_model("ssast-tiny", n_mels=64).encoder
    seld = create_model("seld-tiny")
    seld.encoder.load_pretrained(mono.state_dict(), source_grid=mono.config.grid)
    x = torch.randn(1, 80, 64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(seld.encoder(x[:, None].expand(1, 7, 80, 64)), mono(x), atol=1e-5, rtol=1e-4)
    with pytest.raises(RoomtoneError, match="source_grid"):
        seld.encoder.load_pretrained(mono.state_dict())
    out = seld.predict(torch.randn(2, 7, 100, 64))
    assert out.shape == (2, 10, 3, 3, 13) and out.abs().max() <= 1


@pytest.mark.parametrize("name,batch,match", [
    ("ssast-tiny", {"fbank": torch.zeros(2, 96, 64)}, "mels=128"),
    ("ssast-tiny", {"fbank": torch.zeros(2, 1100, 128)}, "16 to 1024"),
    ("seld-tiny", {"fbank": torch.zeros(2, 4, 80, 64), "target": torch.zeros(2, 8, 6, 4, 13)}, r"\(batch, 7, frames"),
    ("seld-tiny", {"fbank": torch.zeros(2, 7, 80, 64), "target": torch.zeros(2, 8, 3, 3, 13)}, "adpit_target"),
    ("tagging-tiny", {"fbank": torch.zeros(2, 96, 128), "target": torch.zeros(2, 7)}, "multi-hot"),
    ("beats-tiny", {"fbank": torch.zeros(2, 96, 80)}, "beats"),
])
def test_bad_input_is_refused(name, batch, match):
    with pytest.raises(RoomtoneError, match=match):
        _build(name)(batch)


@pytest.mark.parametrize("name", ["ssast-tiny", "beats-tiny", "tagging-tiny", "seld-tiny"])
def test_generic_size_overrides_work_for_every_family(name):
    model = _build(name, dim=64, depth=1, heads=2)
    enc = model.config.encoder.model_dump()
    assert (enc.get("dim", enc.get("encoder_embed_dim")), enc.get("depth", enc.get("encoder_layers"))) == (64, 1)
    assert torch.isfinite(model(_batch(name))["loss"])


def test_unknown_names_and_settings_are_refused():
    with pytest.raises(RoomtoneError, match="ssast-tiny, ssast-small"):
        create_model("ssast-huge")
    with pytest.raises(RoomtoneError, match="mask_ratio"):
        create_model("ssast-tiny", mask_ratio=1.5)
    with pytest.raises(RoomtoneError, match="colour"):
        create_model("tagging-tiny", colour="red")


def test_seld_targets_from_simulation_helpers_have_the_model_layout():
    labels = SeldLabels.from_events([(0, 0, 0, 0.0, 0.0)], n_frames=3)
    assert np.asarray(adpit_target(labels, 13)).shape == (3, 6, 4, 13)
