"""Small models shaped like real ones (a ResNet block, a transformer encoder block, an
Embedding + LSTM classifier) with planted causes that the report must name on the right layer,
through normalisation layers, residual adds and attention."""

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from nearzero import GradientRecorder, explain_model, explain_near_zero_gradients  # noqa: E402


class ResidualBlock(nn.Module):
    """torchvision's BasicBlock: conv-BN-ReLU(in place), conv-BN, += skip, ReLU."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x
        return self.relu(out)


class ResNetLike(nn.Module):
    def __init__(self, channels=8, classes=5):
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, padding=1)
        self.block = ResidualBlock(channels)
        self.head = nn.Linear(channels, classes)

    def forward(self, x):
        return self.head(self.block(F.relu(self.stem(x))).mean((2, 3)))


class EncoderBlock(nn.Module):
    """Pre-norm transformer encoder block: LayerNorm, self-attention, LayerNorm, GELU MLP."""

    def __init__(self, width=16, heads=2):
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attention = nn.MultiheadAttention(width, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, 4 * width)
        self.ln_mid = nn.LayerNorm(4 * width)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(4 * width, width)
        self.head = nn.Linear(width, 3)

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.attention(h, h, h, need_weights=False)[0]
        x = x + self.fc2(self.act(self.ln_mid(self.fc1(self.norm2(x)))))
        return self.head(x.mean(1))


class RecurrentClassifier(nn.Module):
    def __init__(self, vocabulary=50, width=12, classes=4):
        super().__init__()
        self.embedding = nn.Embedding(vocabulary, width)
        self.lstm = nn.LSTM(width, width, batch_first=True)
        self.fc = nn.Linear(width, classes)

    def forward(self, tokens):
        return self.fc(self.lstm(self.embedding(tokens))[0][:, -1])


def model_and_batch(build):
    """`build()` after torch.manual_seed(0), and a batch of 8 (3, 12, 12) images (from a
    generator seeded 1) with labels of 5 classes."""
    torch.manual_seed(0)
    model = build()
    generator = torch.Generator().manual_seed(1)
    return model, torch.randn(8, 3, 12, 12, generator=generator), torch.randint(0, 5, (8,))


def resnet_batch():
    return model_and_batch(ResNetLike)


def explain_all(model, x, y, **kwargs):
    return explain_model(model, inputs=x, targets=y, loss_fn=F.cross_entropy, **kwargs)


def test_batchnorm_shift_kills_the_conv_before_it():
    model, x, y = resnet_batch()
    with torch.no_grad():
        model.block.bn1.bias[:4] = -20.0  # half the channels can never pass the ReLU
    overview = explain_all(model, x, y)
    conv = overview["block.conv1"].to_dict()
    assert conv["causes"][0]["cause"] == "dead_activation"
    assert conv["activation"]["name"] == "ReLU"
    assert conv["activation"]["path"] == ["BatchNorm2d"]
    detail = conv["causes"][0]["detail"]
    assert detail["holder"] == "norm_shift" and detail["dead_units"] == 4
    assert detail["mean_shift"] == pytest.approx(-20.0)
    assert "shift (bias) of BatchNorm2d" in conv["causes"][0]["description"]
    assert "ReLU after BatchNorm2d (module)" in str(overview["block.conv1"])
    # The next conv sees those channels as zero inputs, and says so.
    assert overview["block.conv2"].top_cause == "inputs_near_zero"


def test_residual_add_is_followed_to_the_relu():
    model, x, y = resnet_batch()
    d = explain_all(model, x, y, layers=["block.conv2"])["block.conv2"].to_dict()
    assert d["activation"]["path"] == ["BatchNorm2d", "add"]
    # S_l is ReLU's derivative at bn2(conv2) + x: compare with the plain computation.
    with torch.no_grad():
        stem = F.relu(model.stem(x))
        inner = model.block.relu(model.block.bn1(model.block.conv1(stem)))
        relu_input = model.block.bn2(model.block.conv2(inner)) + stem
    s_section = {s["key"]: s for s in d["sections"]}["S_l"]
    assert s_section["near_zero_fraction"] == pytest.approx(float((relu_input <= 0).float().mean()))


def test_bn_scale_at_zero_is_named():
    model, x, y = resnet_batch()
    with torch.no_grad():
        model.block.bn1.weight[:4] = 0.0
        model.block.bn1.bias[:4] = -0.5
    d = explain_all(model, x, y, layers=["block.conv1"])["block.conv1"].to_dict()
    dead = next(c for c in d["causes"] if c["cause"] == "dead_activation")
    assert dead["detail"]["dead_units"] == 4
    assert dead["detail"]["holder"] in ("norm_scale", "norm_shift")


def test_transformer_block_layernorm_gelu_and_attention():
    torch.manual_seed(0)
    model = EncoderBlock()
    with torch.no_grad():
        model.ln_mid.bias[:32] = -30.0  # GELU's derivative is ~0 far below zero
    x, y = torch.randn(4, 6, 16), torch.randint(0, 3, (4,))
    overview = explain_all(model, x, y)
    fc1 = overview["fc1"].to_dict()
    assert fc1["activation"]["name"] == "GELU" and fc1["activation"]["path"] == ["LayerNorm"]
    sections = {s["key"]: s for s in fc1["sections"]}
    assert sections["S_l"]["dead_unit_fraction"] == pytest.approx(0.5)
    # LayerNorm mixes its features in backward: dead GELU units still pass gradient to fc1
    # through the other features, so fc1's gradients are not near zero, and the report does
    # not blame the activation.
    assert sections["compute dJ/dX_l"]["near_zero_fraction"] > 0.4
    assert fc1["causes"][0]["cause"] != "dead_activation"
    names = {r.layer for r in overview}
    assert {"norm1", "attention", "attention.out_proj", "norm2", "ln_mid", "fc2"} <= names
    attention = overview["attention"].to_dict()
    keys = {s["key"] for s in attention["sections"]}
    assert {"dJ/din_proj_weight[query]", "dJ/din_proj_weight[key]",
            "dJ/din_proj_weight[value]"} <= keys
    assert "in_proj" in attention["notes"][0]
    assert "forward pass was not seen" in overview["attention.out_proj"].to_dict()["notes"][0]


def test_embedding_rows_not_looked_up_and_lstm_gates():
    torch.manual_seed(0)
    model = RecurrentClassifier()
    tokens = torch.randint(0, 10, (6, 7))  # only rows 0..9 of 50 are looked up
    y = torch.randint(0, 4, (6,))
    overview = explain_all(model, tokens, y)
    embedding = overview["embedding"].to_dict()
    looked_up = len(torch.unique(tokens))
    assert embedding["embedding"] == {"rows": 50, "rows_looked_up": looked_up}
    cause = embedding["causes"][0]
    assert cause["cause"] == "inputs_near_zero" and cause["fraction"] > 0.9
    assert f"{50 - looked_up} of 50 rows" in cause["description"]
    lstm = overview["lstm"].to_dict()
    keys = {s["key"] for s in lstm["sections"]}
    for gate in ("input", "forget", "cell", "output"):
        assert f"dJ/dweight_ih_l0[{gate}]" in keys and f"dJ/dweight_hh_l0[{gate}]" in keys
    assert "per gate" in lstm["notes"][0]
    assert overview["fc"].to_dict()["status"] == "analysed"


def test_container_explains_the_layers_inside():
    model, x, y = resnet_batch()
    overview = explain_near_zero_gradients(model, "block", inputs=x, targets=y,
                                           loss_fn=F.cross_entropy)
    assert {r.layer for r in overview} == {"block.conv1", "block.bn1", "block.conv2",
                                           "block.bn2"}
    recorder = GradientRecorder(model, layers=["stem"], record_every=1)
    with recorder.step(0):
        F.cross_entropy(model(x), y).backward()
    with pytest.raises(ValueError, match="not recorded; recorded layers: \\['stem'\\]"):
        explain_near_zero_gradients(recorder, "block")


def test_frozen_unused_and_parameter_free_layers_say_which():
    model, x, y = resnet_batch()
    model.block.conv2.weight.requires_grad_(False)
    model.spare = nn.Linear(3, 3)  # never called
    frozen = explain_near_zero_gradients(model, "block.conv2", inputs=x, targets=y,
                                         loss_fn=F.cross_entropy)
    assert frozen.to_dict()["status"] == "frozen" and "frozen" in str(frozen)
    unused = explain_near_zero_gradients(model, "spare", inputs=x, targets=y,
                                         loss_fn=F.cross_entropy)
    assert unused.to_dict()["status"] == "unused" and "unused" in str(unused)
    with pytest.raises(ValueError, match="'block.relu' \\(ReLU\\) is parameter-free"):
        explain_near_zero_gradients(model, "block.relu", inputs=x, targets=y,
                                    loss_fn=F.cross_entropy)
    overview = explain_all(model, x, y)
    assert "block.conv2" not in {r.layer for r in overview}  # not trainable: not by default
    assert "unused" in str(overview)


def test_typed_report_model_is_what_to_dict_is_made_of():
    import json

    from nearzero.report.model import Cause, ComputationSection, LayerReport, TensorSection

    model, x, y = resnet_batch()
    with torch.no_grad():
        model.block.bn1.bias[:4] = -20.0
    report = explain_near_zero_gradients(model, "block.conv1", inputs=x, targets=y,
                                         loss_fn=F.cross_entropy)
    typed = report.model
    assert isinstance(typed, LayerReport) and isinstance(typed.causes[0], Cause)
    assert isinstance(typed.section("X_l"), TensorSection)
    assert isinstance(typed.section("compute dJ/dX_l"), ComputationSection)
    d = report.to_dict()
    assert {k: v for k, v in d.items() if k != "verbose"} == typed.to_dict()
    assert d["causes"][0]["detail"]["holder"] == typed.causes[0].detail["holder"]
    json.dumps(d)  # JSON-ready


def test_huggingface_bert_with_gradient_checkpointing():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=500, hidden_size=32, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=64,
                                     max_position_embeddings=32, num_labels=3)
    model = transformers.BertForSequenceClassification(config)
    enable = (getattr(model, "activation_checkpointing_enable", None)
              or model.gradient_checkpointing_enable)  # the newer name where it exists
    enable()
    model.train()
    ids, y = torch.randint(0, 500, (4, 16)), torch.randint(0, 3, (4,))
    overview = explain_model(model, inputs={"input_ids": ids}, targets=y,
                             loss_fn=lambda out, t: F.cross_entropy(out.logits, t))
    words = overview["bert.embeddings.word_embeddings"].to_dict()
    assert words["causes"][0]["cause"] == "inputs_near_zero"
    assert words["embedding"]["rows_looked_up"] == len(torch.unique(ids))
    dense = overview["bert.encoder.layer.0.intermediate.dense"].to_dict()
    assert dense["status"] == "analysed" and dense["activation"]["name"] == "GELUActivation"


def test_a_next_op_that_is_not_elementwise_is_named_in_a_note():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.LayerNorm(8), nn.Softmax(-1), nn.Linear(8, 3))
    x, y = torch.randn(10, 6), torch.randint(0, 3, (10,))
    d = explain_all(model, x, y, layers=["0"])["0"].to_dict()
    assert d["activation"]["source"] in ("identity", "assumed_relu")
    assert any("Z_l feeds Softmax through LayerNorm, which is not an elementwise activation"
               in note for note in d["notes"])
