"""Checkpoints: official SSAST/BEATs layouts against a spec written from the reference, and our own files.

The expected key/shape tables below are built from `../shared/reference/pretrain.md` (section 4
and the architecture notes), not from the exporter, so a renamed or reshaped key fails here.
"""

from __future__ import annotations

import io
import pickle

import pytest
import torch

from catalog.errors import RoomtoneError
from pretrain.checkpoints import encoder_state, export_beats, export_ssast, load_beats, load_checkpoint, load_ssast, save_checkpoint
from pretrain.models import BeatsConfig, BeatsTokenizer, create_model


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/pretrain/conftest.py


def ssast_spec(dim: int = 768, depth: int = 12, fdim: int = 128, tdim: int = 1024, patch=(16, 16)) -> dict:
    """Official SSAST keys and shapes (DataParallel-wrapped ASTModel, pretrain stage, DeiT distilled)."""
    n = (fdim // patch[0]) * (tdim // patch[1])
    p = patch[0] * patch[1]
    spec = {"module.v.cls_token": (1, 1, dim), "module.v.dist_token": (1, 1, dim), "module.v.pos_embed": (1, n + 2, dim),
            "module.v.patch_embed.proj.weight": (dim, 1, *patch), "module.v.patch_embed.proj.bias": (dim,)}
    for i in range(depth):
        b = f"module.v.blocks.{i}."
        for norm in ("norm1", "norm2"):
            spec[b + norm + ".weight"] = spec[b + norm + ".bias"] = (dim,)
        spec[b + "attn.qkv.weight"], spec[b + "attn.qkv.bias"] = (3 * dim, dim), (3 * dim,)
        spec[b + "attn.proj.weight"], spec[b + "attn.proj.bias"] = (dim, dim), (dim,)
        spec[b + "mlp.fc1.weight"], spec[b + "mlp.fc1.bias"] = (4 * dim, dim), (4 * dim,)
        spec[b + "mlp.fc2.weight"], spec[b + "mlp.fc2.bias"] = (dim, 4 * dim), (dim,)
    spec["module.v.norm.weight"] = spec["module.v.norm.bias"] = (dim,)
    for head in ("head", "head_dist"):
        spec[f"module.v.{head}.weight"], spec[f"module.v.{head}.bias"] = (1000, dim), (1000,)
    for pred in ("cpredlayer", "gpredlayer"):
        spec[f"module.{pred}.0.weight"], spec[f"module.{pred}.0.bias"] = (dim, dim), (dim,)
        spec[f"module.{pred}.2.weight"], spec[f"module.{pred}.2.bias"] = (p, dim), (p,)
    spec["module.mask_embed"] = (1, 1, dim)
    spec["module.p_input_fdim"] = spec["module.p_input_tdim"] = ()
    return spec


def beats_spec(dim: int = 768, layers: int = 12, heads: int = 12, embed: int = 512, tokenizer: bool = False) -> dict:
    """Released BEATs keys and shapes: patch embedding, weight-normed conv positions, relative bias in every layer."""
    spec = {"patch_embedding.weight": (embed, 1, 16, 16), "layer_norm.weight": (embed,), "layer_norm.bias": (embed,),
            "post_extract_proj.weight": (dim, embed), "post_extract_proj.bias": (dim,),
            # Conv1d(dim, dim, 128, groups=16) under weight_norm(dim=2): g keeps only the kernel axis
            "encoder.pos_conv.0.bias": (dim,), "encoder.pos_conv.0.weight_g": (1, 1, 128),
            "encoder.pos_conv.0.weight_v": (dim, dim // 16, 128),
            "encoder.layer_norm.weight": (dim,), "encoder.layer_norm.bias": (dim,)}
    for i in range(layers):
        a = f"encoder.layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            spec[f"{a}self_attn.{proj}.weight"], spec[f"{a}self_attn.{proj}.bias"] = (dim, dim), (dim,)
        spec[a + "self_attn.grep_linear.weight"], spec[a + "self_attn.grep_linear.bias"] = (8, dim // heads), (8,)
        spec[a + "self_attn.grep_a"] = (1, heads, 1, 1)
        spec[a + "self_attn.relative_attention_bias.weight"] = (320, heads)
        for norm in ("self_attn_layer_norm", "final_layer_norm"):
            spec[f"{a}{norm}.weight"] = spec[f"{a}{norm}.bias"] = (dim,)
        spec[a + "fc1.weight"], spec[a + "fc1.bias"] = (4 * dim, dim), (4 * dim,)
        spec[a + "fc2.weight"], spec[a + "fc2.bias"] = (dim, 4 * dim), (dim,)
    if tokenizer:
        spec["quantize_layer.0.weight"], spec["quantize_layer.0.bias"] = (dim, dim), (dim,)
        spec["quantize_layer.2.weight"], spec["quantize_layer.2.bias"] = (256, dim), (256,)
        spec["quantize.embedding.weight"] = spec["quantize.embedding.embed_avg"] = (1024, 256)
        spec["quantize.embedding.cluster_size"], spec["quantize.embedding.initted"] = (1024,), (1,)
        spec["quantize.cluster_size"] = (1024,)  # BEiT v2's quantizer tracks code usage (statistic_code_usage)
    return spec


BEATS_CFG_KEYS = {
    "input_patch_size", "embed_dim", "conv_bias", "encoder_layers", "encoder_embed_dim", "encoder_ffn_embed_dim",
    "encoder_attention_heads", "activation_fn", "layer_wise_gradient_decay_ratio", "layer_norm_first", "deep_norm",
    "dropout", "attention_dropout", "activation_dropout", "encoder_layerdrop", "dropout_input", "conv_pos",
    "conv_pos_groups", "relative_position_embedding", "num_buckets", "max_distance", "gru_rel_pos",
    "finetuned_model", "predictor_dropout", "predictor_class",
}


def _shapes(state: dict) -> dict:
    return {k: tuple(v.shape) for k, v in state.items()}


def _random_state(spec: dict, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(shape, generator=g) for k, shape in spec.items()}


def test_ssast_base_export_has_exactly_the_official_keys_and_shapes():
    with torch.device("meta"):
        model = create_model("ssast-base")
    exported = export_ssast(model)
    assert _shapes(exported) == ssast_spec()
    assert int(exported["module.p_input_fdim"]) == 128 and int(exported["module.p_input_tdim"]) == 1024
    assert all(k.startswith("module.") for k in exported)


def test_ssast_frame_patches_export_their_shape():
    with torch.device("meta"):
        model = create_model("ssast-small", patch=(128, 2))
    assert _shapes(export_ssast(model)) == ssast_spec(dim=384, patch=(128, 2))


def test_official_ssast_state_dict_loads_strictly_and_round_trips():
    spec = ssast_spec(dim=192)  # the official tiny: DeiT-tiny, 12 layers, 3 heads
    official = _random_state(spec, 0)
    official["module.p_input_fdim"], official["module.p_input_tdim"] = torch.tensor(128), torch.tensor(1024)
    model = load_ssast(official)
    c = model.config.encoder
    assert (c.dim, c.depth, c.heads, c.patch, c.n_mels, c.max_frames) == (192, 12, 3, (16, 16), 128, 1024)
    again = export_ssast(model)
    assert _shapes(again) == spec
    for k, v in official.items():
        if not k.startswith(("module.v.head.", "module.v.head_dist.")):  # the unused DeiT heads are not kept
            assert torch.equal(again[k], v), k
    out = model({"fbank": torch.randn(1, 64, 128)}, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out["loss"])


def test_ssast_loader_refuses_wrong_layouts_and_sizes():
    ours = export_ssast(create_model("ssast-tiny"))
    with pytest.raises(RoomtoneError, match="requested base"):
        load_ssast(ours, size="base")
    with pytest.raises(RoomtoneError, match="module.p_input_fdim"):
        load_ssast({k: v for k, v in ours.items() if k != "module.p_input_fdim"})
    with pytest.raises(RoomtoneError, match="not an official SSAST"):
        load_ssast({k.removeprefix("module."): v for k, v in ours.items()})


def test_beats_base_export_has_the_released_keys_shapes_and_cfg():
    with torch.device("meta"):
        model = create_model("beats-base")
    ckpt = export_beats(model)
    assert set(ckpt) == {"cfg", "model"}
    assert _shapes(ckpt["model"]) == beats_spec()
    cfg = ckpt["cfg"]
    assert BEATS_CFG_KEYS <= set(cfg)
    assert cfg["deep_norm"] and cfg["relative_position_embedding"] and cfg["gru_rel_pos"]
    assert (cfg["encoder_layers"], cfg["encoder_embed_dim"], cfg["num_buckets"], cfg["max_distance"]) == (12, 768, 320, 800)
    with torch.device("meta"):
        tokenizer = BeatsTokenizer(BeatsConfig.sized("base"))
    tok = export_beats(tokenizer)
    assert _shapes(tok["model"]) == beats_spec(tokenizer=True)


def _released_cfg(layers: int) -> dict:
    """A released pretrained `cfg` (values as the reference reports them), with fewer layers to stay small."""
    return {"input_patch_size": 16, "embed_dim": 512, "conv_bias": False, "encoder_layers": layers,
            "encoder_embed_dim": 768, "encoder_ffn_embed_dim": 3072, "encoder_attention_heads": 12,
            "activation_fn": "gelu", "layer_wise_gradient_decay_ratio": 0.6, "layer_norm_first": False,
            "deep_norm": True, "dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0,
            "encoder_layerdrop": 0.05, "dropout_input": 0.0, "conv_pos": 128, "conv_pos_groups": 16,
            "relative_position_embedding": True, "num_buckets": 320, "max_distance": 800, "gru_rel_pos": True,
            "finetuned_model": True, "predictor_dropout": 0.0, "predictor_class": 527}


def test_released_beats_checkpoint_loads_strictly_and_round_trips():
    layers = 2
    state = _random_state(beats_spec(layers=layers), 1)
    table = state["encoder.layers.0.self_attn.relative_attention_bias.weight"]
    for i in range(layers):  # one table, serialised under every layer
        state[f"encoder.layers.{i}.self_attn.relative_attention_bias.weight"] = table
    released = {"cfg": _released_cfg(layers), "model": {**state, "predictor.weight": torch.zeros(527, 768),
                                                         "predictor.bias": torch.zeros(527)}}
    model = load_beats(released)
    assert model.encoder.config.layer_wise_gradient_decay_ratio == 0.6
    again = export_beats(model)
    assert set(again["model"]) == set(state)
    assert all(torch.equal(again["model"][k], v) for k, v in state.items())
    out = model({"fbank": torch.randn(1, 48, 128)}, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out["loss"])

    tok_state = _random_state(beats_spec(layers=layers, tokenizer=True), 2)
    tok_state.update({f"encoder.layers.{i}.self_attn.relative_attention_bias.weight": table for i in range(layers)})
    tok_state["quantize.embedding.initted"] = torch.ones(1)
    tokenizer = load_beats({"cfg": {**_released_cfg(layers), "quant_n": 1024, "quant_dim": 256}, "model": tok_state})
    assert isinstance(tokenizer, BeatsTokenizer)
    assert tokenizer.labels(torch.randn(1, 32, 128)).shape == (1, 16)


def test_beats_loader_refuses_other_layouts():
    with pytest.raises(RoomtoneError, match="'cfg' and 'model'"):
        load_beats({"model": {}})
    with pytest.raises(RoomtoneError, match="layer_norm_first"):
        load_beats({"cfg": {**_released_cfg(2), "layer_norm_first": True}, "model": {}})
    with pytest.raises(RoomtoneError, match="requested tiny"):
        load_beats({"cfg": _released_cfg(12), "model": {}}, size="tiny")


def test_own_checkpoint_round_trips_with_the_optimizer(tmp_path):
    model = create_model("ssast-tiny")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model({"fbank": torch.randn(2, 48, 128)})["loss"].backward()
    opt.step()
    path = save_checkpoint(tmp_path / "ckpt" / "step-7.pt", model, opt, step=7, extra={"seed": 3, "losses": [1.5]})
    fresh = create_model("ssast-tiny", seed=5)
    fresh_opt = torch.optim.AdamW(fresh.parameters(), lr=1e-3)
    payload = load_checkpoint(path, fresh, fresh_opt)
    assert payload["step"] == 7 and payload["extra"] == {"seed": 3, "losses": [1.5]} and payload["name"] == "ssast-tiny"
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), fresh.state_dict().values()))
    assert fresh_opt.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]


def test_own_checkpoint_on_s3(bucket):
    model = create_model("tagging-tiny", num_classes=3)
    uri = f"s3://{bucket}/runs/r1/step-1.pt"
    save_checkpoint(uri, model, step=1)
    assert load_checkpoint(uri, create_model("tagging-tiny", num_classes=3, seed=1))["step"] == 1


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupt_or_truncated_checkpoints_are_detected(tmp_path, damage):
    path = tmp_path / "c.pt"
    save_checkpoint(path, create_model("ssast-tiny"), step=1)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(RoomtoneError, match="corrupt or truncated"):
        load_checkpoint(path)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(RoomtoneError, match="not a roomtone checkpoint"):
        load_checkpoint(path)


class _Payload:
    """Arbitrary code a pickle could run; weights_only loading must refuse it."""


def test_checkpoints_load_weights_only(tmp_path):
    import hashlib

    buf = io.BytesIO()
    torch.save({"model": {}, "trap": _Payload()}, buf)
    data = buf.getvalue()
    path = tmp_path / "evil.pt"
    path.write_bytes(b"ROOMTONE-CKPT/1 " + hashlib.sha256(data).hexdigest().encode() + b"\n" + data)
    with pytest.raises(RoomtoneError, match="has a roomtone header but no checkpoint under it") as err:
        load_checkpoint(path)  # refused by weights_only, said in one message
    assert isinstance(err.value.__context__, pickle.UnpicklingError)
    buf = io.BytesIO()
    torch.save({"model": {}}, buf)  # loadable, but not what save_checkpoint writes (was a KeyError later)
    data = buf.getvalue()
    path.write_bytes(b"ROOMTONE-CKPT/1 " + hashlib.sha256(data).hexdigest().encode() + b"\n" + data)
    with pytest.raises(RoomtoneError, match="lacks name, kind, config, optimizer, step, extra"):
        load_checkpoint(path)


def test_checkpoint_of_another_size_names_both(tmp_path):
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, create_model("ssast-tiny"))
    with torch.device("meta"):
        small = create_model("ssast-small")
    with pytest.raises(RoomtoneError, match=r"ssast-tiny \(size tiny.*ssast-small \(size small"):
        load_checkpoint(path, small)
    with pytest.raises(RoomtoneError, match="beats-tiny"):
        load_checkpoint(path, create_model("beats-tiny"))


def test_a_pretrained_encoder_starts_a_supervised_model(tmp_path):
    ssast = create_model("ssast-tiny", seed=0)
    path = save_checkpoint(tmp_path / "pre.pt", ssast, step=10)
    tagging = create_model("tagging-tiny", num_classes=4, seed=1)
    tagging.encoder.load_pretrained(encoder_state(load_checkpoint(path)["model"]))
    x = torch.randn(2, 64, 128)
    torch.testing.assert_close(tagging.encoder.embed(x), ssast.encoder.embed(x))
    with pytest.raises(RoomtoneError, match="no encoder weights"):
        encoder_state({"head.weight": torch.zeros(1)})


def test_a_missing_run_folder_is_named_as_missing_and_an_empty_one_as_holding_no_checkpoint(tmp_path):
    """A mistyped run folder was reported as 'holds no checkpoint', as if it existed."""
    from pretrain.train import load_trained

    with pytest.raises(RoomtoneError, match="does not exist"):
        load_trained(str(tmp_path / "runs" / "typo"))
    (tmp_path / "runs" / "empty").mkdir(parents=True)
    with pytest.raises(RoomtoneError, match="holds no checkpoint"):
        load_trained(str(tmp_path / "runs" / "empty"))
    with pytest.raises(RoomtoneError, match="does not exist"):
        load_trained(str(tmp_path / "runs" / "empty" / "step-00000010.pt"))
