import torch

from fedray.clients.config import ClientConfig
from fedray.clients.methods import METHODS, local_update
from fedray.platform.modules.build import build_model
from fedray.platform.modules.config import ModelConfig
from fedray.platform.modules.pfr import PFR_SHARED, PFRNet
from fedray.platform.params import split_names


def test_pfr_shares_the_trunk_and_its_shared_branch_only():
    model = PFRNet(1, widths=[8, 16], norm_groups=4)
    shared, personal = split_names(model, PFR_SHARED)
    assert all(n.startswith(("trunk.", "gamma_s", "beta_s", "head_s.")) for n in shared)
    assert set(personal) == {"gamma_p", "beta_p", "P_p.weight", "P_p.bias", "head_j.weight", "head_j.bias",
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

    local_update(METHODS["fedrep"], model, data, cfg, torch.Generator().manual_seed(0))
    assert seen_epochs == [0, 1]  # the head phase and the encoder phase each get their own draw
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert "head.fc.weight" in changed and "encoder.stages.stage1.conv.weight" in changed
    assert all(p.requires_grad for p in model.parameters())  # nothing left frozen


def test_proximal_term_pulls_towards_the_round_start():
    from fedray.clients.methods import proximal_term

    model = build_model("cnn", ModelConfig(widths=[4], norm_groups=2), 1, 2)
    names = [n for n, _ in model.named_parameters() if n.startswith("encoder.")]
    term = proximal_term(model, names, mu=0.2)
    assert float(term().detach()) == 0.0
    with torch.no_grad():
        model.encoder.stages.stage1.conv.bias.add_(1.0)  # 4 entries moved by 1
        model.head.fc.bias.add_(5.0)  # not a named (shared) tensor: no pull
    assert abs(float(term().detach()) - 0.5 * 0.2 * 4) < 1e-6
