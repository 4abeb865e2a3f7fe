"""load_weights_into_gpt on OpenAI's layout, checked against Hugging Face's GPT-2 in memory.

Every weight matrix of OpenAI's checkpoint is stored (in_features, out_features), the
transpose of nn.Linear's; the query, key and value matrices are square, so a forgotten
transpose there changes no shape, only the logits. No download, no TensorFlow.
"""

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from previous_chapters import GPTModel, generate_text_simple, load_weights_into_gpt
from tiny_models import tiny_config

CONFIG = tiny_config(qkv_bias=True)  # OpenAI's layout has query, key and value biases


def random_hf_gpt2():
    """A tiny GPT-2 whose every parameter (biases and layer norms too) is random."""
    config = GPT2Config(vocab_size=CONFIG["vocab_size"], n_positions=CONFIG["context_length"],
                        n_embd=CONFIG["emb_dim"], n_layer=CONFIG["n_layers"],
                        n_head=CONFIG["n_heads"], resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        layer_norm_epsilon=1e-5, activation_function="gelu_new",
                        bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.1 * torch.randn_like(param))
    return model.eval()


def openai_params(hf_model):
    """The nested dict download_and_load_gpt2 returns, read from a Hugging Face GPT-2
    (its Conv1D weights are (in, out), as in OpenAI's checkpoint)."""
    sd = {name: tensor.numpy() for name, tensor in hf_model.transformer.state_dict().items()}

    def layer(prefix):
        return {"w": sd[prefix + ".weight"], "b": sd[prefix + ".bias"]}

    def norm(prefix):
        return {"g": sd[prefix + ".weight"], "b": sd[prefix + ".bias"]}

    blocks = [{"attn": {"c_attn": layer(f"h.{i}.attn.c_attn"), "c_proj": layer(f"h.{i}.attn.c_proj")},
               "mlp": {"c_fc": layer(f"h.{i}.mlp.c_fc"), "c_proj": layer(f"h.{i}.mlp.c_proj")},
               "ln_1": norm(f"h.{i}.ln_1"), "ln_2": norm(f"h.{i}.ln_2")}
              for i in range(CONFIG["n_layers"])]
    return {"wte": sd["wte.weight"], "wpe": sd["wpe.weight"], "g": sd["ln_f.weight"],
            "b": sd["ln_f.bias"], "blocks": blocks}


def test_loaded_model_computes_hugging_faces_logits_and_tokens():
    reference = random_hf_gpt2()
    model = GPTModel(CONFIG)
    load_weights_into_gpt(model, openai_params(reference))
    model.eval()

    idx = torch.randint(0, CONFIG["vocab_size"], (2, CONFIG["context_length"]),
                        generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = model(idx), reference(idx).logits
    assert theirs.std() > 0.1  # not two near-zero outputs
    assert (ours - theirs).abs().max() <= 1e-4

    prompt = idx[:1, :4]
    expected = reference.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                                  max_new_tokens=8, pad_token_id=0)
    assert torch.equal(generate_text_simple(model, prompt, 8, CONFIG["context_length"]), expected)
