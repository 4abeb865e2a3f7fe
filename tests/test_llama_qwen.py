"""Appendix G's Llama 3.2 and Qwen 3 against Hugging Face's transformers, on the same
random weights: logits, greedy tokens, cached generation, parameter counts of the published
sizes, and loading the hub's files through the course's verified downloads."""

import hashlib
import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import LlamaConfig, LlamaForCausalLM, Qwen3Config, Qwen3ForCausalLM
from transformers import logging as hf_logging

from gpt_download import MIRROR_ENV, MIRROR_MANIFEST_ENV, DownloadError, download_hub_model
from download_engine import _hub_token_header
from loopback_server import LoopbackServer
from previous_chapters import (
    LLAMA32_CONFIG_1B, LLAMA32_CONFIG_3B, QWEN3_CONFIG_1_7B, QWEN_CONFIG_06_B, Llama3Model,
    Qwen3Model, config_from_hub, generate, generate_llama_cached, hub_name,
    load_weights_into_llama, load_weights_into_qwen, read_hub_weights,
)

hf_logging.set_verbosity_error()
TOLERANCE = 1e-5  # float32 logits, ours vs transformers'

# (heads, key/value heads, emb_dim, hidden_dim, tied head, context, original context of the
# RoPE scaling or None): multi-head, grouped and multi-query attention, odd sizes, contexts
# longer than the original one.
LLAMA_SHAPES = [
    (6, 2, 48, 70, False, 64, 16),
    (4, 4, 32, 51, True, 40, 8),
    (8, 1, 64, 96, False, 48, None),
    (6, 3, 60, 33, True, 80, 32),
]
# (heads, key/value heads, emb_dim, head_dim, hidden_dim, tied head)
QWEN_SHAPES = [
    (4, 2, 48, 20, 70, True),
    (6, 6, 36, 8, 50, False),
    (8, 1, 40, 12, 64, True),
]


def randomized(model):
    """`model` with every parameter moved off its initial value (gains too), in eval mode."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def hf_llama(heads, kv_heads, emb_dim, hidden_dim, tied, context, original, vocab=97):
    rope = {"rope_type": "default", "rope_theta": 10_000.0}
    if original is not None:
        rope = {"rope_type": "llama3", "rope_theta": 10_000.0, "factor": 8.0,
                "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                "original_max_position_embeddings": original}
    config = LlamaConfig(vocab_size=vocab, hidden_size=emb_dim, intermediate_size=hidden_dim,
                         num_hidden_layers=2, num_attention_heads=heads,
                         num_key_value_heads=kv_heads, max_position_embeddings=context,
                         rms_norm_eps=1e-5, tie_word_embeddings=tied, rope_parameters=rope,
                         bos_token_id=None, eos_token_id=None, pad_token_id=None)
    torch.manual_seed(1)
    return randomized(LlamaForCausalLM(config))


def hf_qwen(heads, kv_heads, emb_dim, head_dim, hidden_dim, tied, context=48, vocab=101):
    config = Qwen3Config(vocab_size=vocab, hidden_size=emb_dim, intermediate_size=hidden_dim,
                         num_hidden_layers=2, num_attention_heads=heads,
                         num_key_value_heads=kv_heads, head_dim=head_dim,
                         max_position_embeddings=context, rms_norm_eps=1e-6,
                         tie_word_embeddings=tied,
                         rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
                         bos_token_id=None, eos_token_id=None, pad_token_id=None)
    torch.manual_seed(1)
    return randomized(Qwen3ForCausalLM(config))


def ours_from(reference, folder):
    """Our model of the same family, loaded from the file reference.save_pretrained writes."""
    reference.save_pretrained(folder)
    cfg = config_from_hub(json.loads((folder / "config.json").read_text()))
    model_class, loader = ((Qwen3Model, load_weights_into_qwen) if cfg.get("qk_norm")
                           else (Llama3Model, load_weights_into_llama))
    with torch.device("meta"):
        model = model_class(cfg)
    loader(model, cfg, read_hub_weights(sorted(folder.glob("*.safetensors"))))
    return model.eval(), cfg


def check_parity(reference, tmp_path):
    ours, cfg = ours_from(reference, tmp_path)
    assert cfg["dtype"] == torch.float32
    torch.manual_seed(2)
    ids = torch.randint(0, cfg["vocab_size"], (2, cfg["context_length"]))
    with torch.no_grad():
        difference = (ours(ids) - reference(ids).logits).abs().max().item()
    assert difference < TOLERANCE
    prompt = ids[:1, :5]
    new = cfg["context_length"] - 5
    expected = reference.generate(prompt, max_new_tokens=new, do_sample=False,
                                  attention_mask=torch.ones_like(prompt))
    assert torch.equal(generate(ours, prompt, new, cfg["context_length"]), expected)
    assert torch.equal(generate_llama_cached(ours, prompt, new, cfg["context_length"]), expected)
    return difference


@pytest.mark.parametrize("shape", LLAMA_SHAPES, ids=lambda s: "h{}-kv{}-d{}-ff{}-tied{}-ctx{}-orig{}".format(*s))
def test_llama_matches_transformers(shape, tmp_path):
    check_parity(hf_llama(*shape), tmp_path)


@pytest.mark.parametrize("shape", QWEN_SHAPES, ids=lambda s: "h{}-kv{}-d{}-hd{}-ff{}-tied{}".format(*s))
def test_qwen_matches_transformers(shape, tmp_path):
    check_parity(hf_qwen(*shape), tmp_path)


def test_rope_scaling_is_what_makes_the_long_context_match(tmp_path):
    # The same weights without Llama 3's frequency scaling give other logits: the parity
    # above depends on the scaling being computed as transformers does.
    reference = hf_llama(6, 2, 48, 70, False, 64, 16)
    ours, cfg = ours_from(reference, tmp_path)
    ids = torch.randint(0, cfg["vocab_size"], (1, 64))
    ours.rope_freq = None
    with torch.no_grad():
        assert (ours(ids) - reference(ids).logits).abs().max() > 1e-3


def test_cached_generation_equals_uncached_sampling_eos_and_a_sliding_window():
    cfg = config_from_hub(hf_llama(6, 2, 48, 70, False, 24, 8).config.to_dict())
    torch.manual_seed(3)
    model = randomized(Llama3Model(cfg))
    prompt = torch.randint(0, cfg["vocab_size"], (3, 7))
    # 30 new tokens: past the 24-token context, where the window slides on
    assert torch.equal(generate(model, prompt, 30, 24), generate_llama_cached(model, prompt, 30, 24))
    for seed in (4, 5):
        torch.manual_seed(seed)
        plain = generate(model, prompt, 12, 24, temperature=1.5, top_k=20, top_p=0.9)
        torch.manual_seed(seed)
        cached = generate_llama_cached(model, prompt, 12, 24, temperature=1.5, top_k=20, top_p=0.9)
        assert torch.equal(plain, cached)
    eos = int(generate(model, prompt[:1], 3, 24)[0, -1])  # a token the first sequence picks
    assert torch.equal(generate(model, prompt, 10, 24, eos_id=eos),
                       generate_llama_cached(model, prompt, 10, 24, eos_id=eos))
    with pytest.raises(ValueError, match="temperature"):
        generate_llama_cached(model, prompt, 3, 24, temperature=-1)


@pytest.mark.parametrize("model_class, cfg, total, embedding", [
    (Llama3Model, LLAMA32_CONFIG_1B, 1_235_814_400, 262_668_288),
    (Llama3Model, LLAMA32_CONFIG_3B, 3_212_749_824, 394_002_432),
    (Qwen3Model, QWEN_CONFIG_06_B, 596_049_920, 155_582_464),
    (Qwen3Model, QWEN3_CONFIG_1_7B, 1_720_574_976, 311_164_928),
], ids=["llama-1b", "llama-3b", "qwen-0.6b", "qwen-1.7b"])
def test_parameter_counts_of_the_published_sizes(model_class, cfg, total, embedding):
    # Llama 3.2: 1.24B and 3.21B; Qwen 3: 0.6B (0.44B without the embedding) and 1.7B (1.4B)
    with torch.device("meta"):
        model = model_class(cfg)
    assert sum(p.numel() for p in model.parameters()) == total
    assert model.tok_emb.weight.numel() == embedding
    assert model.out_head.weight is model.tok_emb.weight
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())


# The published config.json files' values (hub: meta-llama/Llama-3.2-1B, Qwen/Qwen3-0.6B).
PUBLISHED_LLAMA_1B = {
    "model_type": "llama", "vocab_size": 128256, "max_position_embeddings": 131072,
    "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
    "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64, "rms_norm_eps": 1e-05,
    "rope_theta": 500000.0, "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0,
                                             "low_freq_factor": 1.0, "rope_type": "llama3",
                                             "original_max_position_embeddings": 8192},
    "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": True,
    "torch_dtype": "bfloat16"}
PUBLISHED_QWEN_06B = {
    "model_type": "qwen3", "vocab_size": 151936, "max_position_embeddings": 40960,
    "hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 28,
    "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128, "rms_norm_eps": 1e-06,
    "rope_theta": 1000000, "rope_scaling": None, "attention_bias": False,
    "tie_word_embeddings": True, "torch_dtype": "bfloat16"}


def test_the_published_configs_are_ours():
    assert config_from_hub(PUBLISHED_LLAMA_1B) == LLAMA32_CONFIG_1B
    assert config_from_hub(dict(PUBLISHED_LLAMA_1B, hidden_size=3072, num_attention_heads=24,
                                num_hidden_layers=28, head_dim=128)) == LLAMA32_CONFIG_3B
    assert config_from_hub(PUBLISHED_QWEN_06B) == QWEN_CONFIG_06_B
    assert config_from_hub(dict(PUBLISHED_QWEN_06B, hidden_size=2048,
                                intermediate_size=6144)) == QWEN3_CONFIG_1_7B


@pytest.mark.parametrize("change, message", [
    ({"attention_bias": True}, "attention_bias=True"),
    ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, "rope_type=yarn"),
    ({"rms_norm_eps": 1e-6}, "rms_norm_eps=1e-06"),
    ({"model_type": "gpt2"}, "model_type 'gpt2'"),
])
def test_what_the_models_do_not_implement_is_refused(change, message):
    with pytest.raises(ValueError, match=message):
        config_from_hub(dict(PUBLISHED_LLAMA_1B, **change))


@pytest.fixture(scope="module")
def tiny_qwen_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("qwen")
    reference = hf_qwen(4, 2, 48, 20, 70, True)
    reference.save_pretrained(folder)
    cfg = config_from_hub(json.loads((folder / "config.json").read_text()))
    return cfg, load_file(folder / "model.safetensors")


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.pop("model.layers.1.mlp.up_proj.weight"),
     r"no tensor model\.layers\.1\.mlp\.up_proj\.weight \(for trf_blocks\.1\.ff\.up\.weight\)"),
    (lambda p: p.update({"model.layers.0.self_attn.k_proj.weight": torch.zeros(40, 47)}),
     r"model\.layers\.0\.self_attn\.k_proj\.weight has shape \(40, 47\) .* needs \(40, 48\)"),
    (lambda p: p.update({"model.layers.2.mlp.up_proj.weight": torch.zeros(70, 48)}),
     r"hold model\.layers\.2\.mlp\.up_proj\.weight that this model has no place for"),
])
def test_a_missing_wrong_or_extra_tensor_is_one_error_naming_it(tiny_qwen_file, damage, message):
    cfg, params = tiny_qwen_file
    params = dict(params)
    damage(params)
    with torch.device("meta"):
        model = Qwen3Model(cfg)
    with pytest.raises(ValueError, match=message) as error:
        load_weights_into_qwen(model, cfg, params)
    assert "\n" not in str(error.value)


def test_a_tied_checkpoint_that_stores_the_head_too_loads(tiny_qwen_file):
    cfg, params = tiny_qwen_file
    with torch.device("meta"):
        model = Qwen3Model(cfg)
    load_weights_into_qwen(model, cfg, dict(params, **{"lm_head.weight": params["model.embed_tokens.weight"]}))
    assert model.out_head.weight is model.tok_emb.weight
    assert torch.equal(model.tok_emb.weight, params["model.embed_tokens.weight"])


def test_loaded_weights_are_the_files_tensors_not_copies(tiny_qwen_file):
    cfg, params = tiny_qwen_file
    with torch.device("meta"):
        model = Qwen3Model(cfg)
    load_weights_into_qwen(model, cfg, params)
    for name, p in model.named_parameters():
        assert p.data_ptr() == params[hub_name(name)].data_ptr(), name


def served(folder, repo):
    """{url path: bytes} of a hub repository's files on the mirror, and its manifest."""
    files = {f"/huggingface/{repo}/{p.name}": p.read_bytes() for p in folder.iterdir()
             if p.is_file() and not p.name.startswith(".")}
    manifest = {path[1:]: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                for path, data in files.items()}
    return files, manifest


def mirror_env(monkeypatch, tmp_path, server, manifest):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    monkeypatch.setenv(MIRROR_ENV, server.url)
    monkeypatch.setenv(MIRROR_MANIFEST_ENV, str(path))


@pytest.mark.parametrize("repo, sharded", [("meta-llama/Llama-3.2-1B", False),
                                           ("Qwen/Qwen3-1.7B", True)])
def test_the_hubs_files_download_verified_and_load(repo, sharded, tmp_path, monkeypatch):
    reference = hf_qwen(4, 2, 48, 20, 70, False) if "Qwen" in repo else hf_llama(6, 2, 48, 70, True, 64, 16)
    hub = tmp_path / "hub"
    # shards of at most 50 kB: several files and an index, as the hub's larger models have
    reference.save_pretrained(hub, max_shard_size="50KB" if sharded else "10GB")
    assert (hub / "model.safetensors.index.json").exists() == sharded
    files, manifest = served(hub, repo)
    with LoopbackServer(files) as server:
        mirror_env(monkeypatch, tmp_path, server, manifest)
        hub_config, paths = download_hub_model(repo, tmp_path / "models")
    assert len(paths) == (len(list(hub.glob("*.safetensors"))))
    assert all(p.parent == tmp_path / "models" / repo for p in paths)
    cfg = config_from_hub(hub_config)
    model_class, loader = (Qwen3Model, load_weights_into_qwen) if "Qwen" in repo else (Llama3Model, load_weights_into_llama)
    with torch.device("meta"):
        ours = model_class(cfg)
    loader(ours, cfg, read_hub_weights(paths))
    ids = torch.randint(0, cfg["vocab_size"], (1, 20))
    with torch.no_grad():
        assert (ours(ids) - reference(ids).logits).abs().max() < TOLERANCE


def test_a_damaged_download_is_refused_by_its_hash_and_a_page_by_its_header(tmp_path, monkeypatch):
    repo = "Qwen/Qwen3-0.6B"
    hub = tmp_path / "hub"
    hf_qwen(4, 2, 48, 20, 70, True).save_pretrained(hub)
    files, manifest = served(hub, repo)
    weights = f"/huggingface/{repo}/model.safetensors"
    damaged = bytearray(files[weights])
    damaged[-100] ^= 0x40
    with LoopbackServer(dict(files, **{weights: bytes(damaged)})) as server:
        mirror_env(monkeypatch, tmp_path, server, manifest)
        with pytest.raises(DownloadError, match="model.safetensors(?s:.*)its SHA-256 is") as error:
            download_hub_model(repo, tmp_path / "models")
    assert not (tmp_path / "models" / repo / "model.safetensors").exists()
    del manifest[weights[1:]]  # not pinned: then the file must at least be safetensors
    with LoopbackServer(dict(files, **{weights: b"\x00" * 5000})) as server:
        mirror_env(monkeypatch, tmp_path, server, manifest)
        with pytest.raises(DownloadError, match="not a readable safetensors file") as error:
            download_hub_model(repo, tmp_path / "models")
    assert len(str(error.value).splitlines()) <= 3  # what failed, where, and what to do


def test_a_shard_index_naming_a_path_outside_the_folder_is_refused(tmp_path, monkeypatch):
    repo = "Qwen/Qwen3-1.7B"
    index = json.dumps({"weight_map": {"model.embed_tokens.weight": "../../escape.safetensors"}})
    files = {f"/huggingface/{repo}/config.json": b"{}",
             f"/huggingface/{repo}/model.safetensors.index.json": index.encode()}
    with LoopbackServer(files) as server:
        mirror_env(monkeypatch, tmp_path, server, {})
        with pytest.raises(DownloadError, match="not a plain .safetensors file name"):
            download_hub_model(repo, tmp_path / "models")
    with pytest.raises(ValueError, match="not a hub repository name"):
        download_hub_model("../etc", tmp_path / "models")


def test_the_access_token_goes_to_the_hub_alone(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    assert _hub_token_header("https://huggingface.co/meta-llama/Llama-3.2-1B/resolve/main/config.json") == \
        {"Authorization": "Bearer hf_secret"}
    assert _hub_token_header("http://127.0.0.1:8765/huggingface/meta-llama/x") == {}
    monkeypatch.delenv("HF_TOKEN")
    assert _hub_token_header("https://huggingface.co/x") == {}


# Run in a process of its own: the resident memory before loading, and the peak while loading
# a bfloat16 checkpoint into a model built on the meta device and running it once. Read from
# /proc (VmRSS, VmHWM: this process alone; getrusage's maximum would include the parent's,
# which Linux carries over exec).
MEMORY_PROBE = """
import json, sys, torch
from previous_chapters import Llama3Model, load_weights_into_llama, read_hub_weights

def status_kib(field):
    line = next(l for l in open("/proc/self/status") if l.startswith(field + ":"))
    return int(line.split()[1])

cfg = json.loads(sys.argv[2]); cfg["dtype"] = torch.bfloat16
before = status_kib("VmRSS")
with torch.device("meta"):
    model = Llama3Model(cfg)
load_weights_into_llama(model, cfg, read_hub_weights([sys.argv[1]]))
with torch.no_grad():
    model(torch.tensor([[1, 2, 3]]))
print(json.dumps({"before_kib": before, "peak_kib": status_kib("VmHWM")}))
"""


def write_random_llama(path, cfg):
    """A random bfloat16 checkpoint of `cfg`, in the hub's names; returns its size in bytes."""
    with torch.device("meta"):
        shapes = {hub_name(n): p.shape for n, p in Llama3Model(cfg).named_parameters()}
    torch.manual_seed(0)
    save_file({name: torch.empty(shape, dtype=torch.bfloat16).normal_(0, 0.02)
               for name, shape in shapes.items()}, path)
    return path.stat().st_size


def peak_load_memory(path, cfg):
    """(resident memory before, peak while loading), in bytes, measured in a fresh process."""
    probe = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(path),
                            json.dumps({**cfg, "dtype": "bfloat16"})],
                           check=True, capture_output=True, text=True)
    result = json.loads(probe.stdout.strip().splitlines()[-1])
    return 1024 * result["before_kib"], 1024 * result["peak_kib"]


@pytest.mark.slow  # writes a 300 MB checkpoint and loads it in a process of its own
def test_loading_a_bfloat16_checkpoint_holds_one_copy_of_the_weights(tmp_path):
    if sys.platform != "linux":
        pytest.skip("reads the process's memory from /proc (Linux)")
    # Llama 3.2's layout at a tenth of the 1B model's size: 150M parameters, 300 MB.
    cfg = {**LLAMA32_CONFIG_1B, "vocab_size": 32_000, "emb_dim": 1024, "n_heads": 16,
           "n_layers": 8, "hidden_dim": 4096, "context_length": 8192}
    size = write_random_llama(tmp_path / "model.safetensors", cfg)
    before, peak = peak_load_memory(tmp_path / "model.safetensors", cfg)
    # One copy, plus about 90 MiB of working memory (the 1B model's 2,357 MiB file measured
    # 2,446 MiB); two copies would be 2 x size.
    assert peak - before < 1.5 * size, f"{(peak - before) / 2**20:.0f} MiB for {size / 2**20:.0f} MiB"
