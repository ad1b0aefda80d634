from functools import partial

import torch

from fedray.clients.config import ClientConfig
from fedray.clients.methods import METHODS, LocalTraining, local_update, pull_towards, sgd, snapshot
from fedray.clients.training import shuffled_batches
from fedray.platform.modules.build import build_model
from fedray.platform.modules.config import ModelConfig
from fedray.platform.modules.pfr import PFR_SHARED, PFRNet
from fedray.platform.params import split_names


def test_pfr_shares_the_trunk_and_its_shared_branch_only():
    model = PFRNet(1, widths=[8, 16], norm_groups=4)
    shared, personal = split_names(model, PFR_SHARED)
    assert all(n.startswith(("trunk.", "R_s.", "head_s.")) for n in shared)
    assert set(personal) == {"R_p.gamma", "R_p.beta", "P_p.weight", "P_p.bias", "head_j.weight", "head_j.bias",
                             "head_p.weight", "head_p.bias"}  # fmt: skip


def test_pfr_loss_is_the_weighted_sum_of_three_cross_entropies():
    torch.manual_seed(0)
    model = PFRNet(1, widths=[8], norm_groups=4, loss_weights=(1.0, 0.5, 0.25))
    x, y = torch.rand(6, 1, 16, 16), torch.tensor([0, 1, 0, 1, 1, 0])
    terms = model.training_losses(x, y)
    expected = terms["joint"] + 0.5 * terms["personal"] + 0.25 * terms["shared"]
    assert torch.allclose(terms["loss"], expected)
    assert torch.equal(model(x), model.all_logits(x)["joint"]) and model.forward_shared(x).shape == (6, 2)


def test_personal_branch_sees_the_feature_statistics():
    """Scaling the input changes the trunk's statistics: z_p moves, the instance-normalised z_s barely does."""
    torch.manual_seed(0)
    model = PFRNet(1, widths=[8], norm_groups=4).eval()
    x = torch.rand(4, 1, 16, 16) + 0.1
    zs1, zp1 = model.representations(x)
    zs2, zp2 = model.representations(3 * x)
    assert (zp1 - zp2).abs().mean() > 5 * (zs1 - zs2).abs().mean()


def test_methods_split_the_same_trunk_differently():
    cfg = ModelConfig(widths=[8, 16], norm_groups=4)
    cnn = build_model("cnn", cfg, 1, 2)
    shared = {m: split_names(cnn, METHODS[m].shared)[0] for m in ("fedavg", "local", "fedper", "fedbn")}
    assert len(shared["fedavg"]) == len(cnn.state_dict()) and shared["local"] == []
    assert all(n.startswith("encoder.") for n in shared["fedper"])
    assert not any(".norm." in n for n in shared["fedbn"]) and "head.fc.weight" in shared["fedbn"]


def test_fedrep_trains_the_head_first_then_only_the_encoder():
    torch.manual_seed(0)
    model = build_model("cnn", ModelConfig(widths=[4], norm_groups=2), 1, 2)
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 2, (16,))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    cfg = ClientConfig(epochs=1, head_epochs=1, batch_size=8, lr=0.1, momentum=0.0)
    seen_epochs = []

    def data(epoch):
        seen_epochs.append(epoch)
        return x, y

    generator = torch.Generator().manual_seed(0)
    run = LocalTraining(cfg, data, shuffled_batches(cfg.batch_size, generator), partial(sgd, cfg=cfg))
    local_update(METHODS["fedrep"], model, run)
    assert seen_epochs == [0, 1]  # the head phase and the encoder phase each get their own draw
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert "head.fc.weight" in changed and "encoder.stages.stage1.conv.weight" in changed
    assert all(p.requires_grad for p in model.parameters())  # nothing left frozen


def test_proximal_term_pulls_towards_the_round_start():
    model = build_model("cnn", ModelConfig(widths=[4], norm_groups=2), 1, 2)
    encoder = [p for n, p in model.named_parameters() if n.startswith("encoder.")]
    term = pull_towards(encoder, snapshot(encoder), mu=0.2)
    assert float(term().detach()) == 0.0
    with torch.no_grad():
        model.encoder.stages.stage1.conv.bias.add_(1.0)  # 4 entries moved by 1
        model.head.fc.bias.add_(5.0)  # not a named (shared) tensor: no pull
    assert abs(float(term().detach()) - 0.5 * 0.2 * 4) < 1e-6


def _ditto_round(lam: float) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    model = build_model("ditto", ModelConfig(widths=[4], norm_groups=2), 1, 2)
    received = {n: p.detach().clone() for n, p in model.global_model.named_parameters()}
    x, y = torch.rand(32, 1, 8, 8), torch.randint(0, 2, (32,))
    cfg = ClientConfig(epochs=3, batch_size=8, lr=0.2, momentum=0.0, ditto_lambda=lam)
    generator = torch.Generator().manual_seed(0)
    run = LocalTraining(cfg, lambda epoch: (x, y), shuffled_batches(8, generator), partial(sgd, cfg=cfg))
    stats = local_update(METHODS["ditto"], model, run)
    assert "personal_loss" in stats
    return model, received


def test_ditto_shares_the_global_model_and_pulls_the_personal_one_towards_it():
    model, received = _ditto_round(lam=0.0)
    shared, personal = split_names(model, METHODS["ditto"].shared)
    assert all(n.startswith("global_model.") for n in shared) and all(n.startswith("personal_model.") for n in personal)
    assert len(shared) == len(personal)
    x = torch.rand(4, 1, 8, 8)
    torch.testing.assert_close(model(x), model.personal_model(x))  # the client predicts with its own model

    def distance(m):
        return sum(((p.detach() - received[n]) ** 2).sum() for n, p in m.personal_model.named_parameters())

    free, pulled = distance(model), distance(_ditto_round(lam=5.0)[0])
    assert pulled < 0.5 * free  # λ keeps v_k near the global model it received (w^t)
    global_moved = any(not torch.equal(p, received[n]) for n, p in model.global_model.named_parameters())
    assert global_moved
