"""compare_dictionaries and evaluate from the Python client against a real
saedictd: numpy arrays per feature, the SAEBench report as a dict, and the
server's errors as grpc.RpcError with its code."""
import grpc
import numpy as np
import pytest

from conftest import random_sae, write_saelens


@pytest.fixture
def pair(server):
    cfg, sae = random_sae(16, 40, seed=3)
    write_saelens(server.root / "a", cfg, sae)
    perm = np.random.default_rng(2).permutation(40)
    write_saelens(server.root / "p", cfg, {"W_enc": sae["W_enc"][:, perm],
                                           "b_enc": sae["b_enc"][perm],
                                           "W_dec": sae["W_dec"][perm], "b_dec": sae["b_dec"]})
    server.client.load_dictionary("a", "a")
    server.client.load_dictionary("p", "p")
    return server, perm


def test_decoder_comparison_recovers_the_permutation(pair):
    server, perm = pair
    phases = []
    cmp = server.client.compare_dictionaries("p", "a", progress=lambda p, f: phases.append(p))
    assert abs(cmp.summary.mean_max_a_to_b - 1) < 1e-9
    assert cmp.summary.has_assignment
    np.testing.assert_array_equal(cmp.a.assigned_partner, perm)
    np.testing.assert_array_equal(cmp.a.best_partner, perm)
    assert cmp.a.matched.all()
    np.testing.assert_array_equal(cmp.b.assigned_partner[perm], np.arange(40))
    assert phases, "progress was reported"
    summary_only = server.client.compare_dictionaries("p", "a", matches=False, assignment=False)
    assert summary_only.a is None and not summary_only.summary.has_assignment


def test_comparison_errors(pair):
    server, _ = pair
    with pytest.raises(grpc.RpcError) as e:
        server.client.compare_dictionaries("a", "ghost")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as e:
        server.client.compare_dictionaries("a", "p", method="activation")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "corpus" in e.value.details()
    with pytest.raises(ValueError):
        server.client.compare_dictionaries("a", "p", method="cosine")


def test_evaluate_sent_activations(pair):
    server, _ = pair
    x = np.random.default_rng(4).standard_normal((500, 16)).astype(np.float32)
    report = server.client.evaluate("a", x, chunk_rows=128, per_token_error_norms=True,
                                    eval_id="py-1")
    assert report["eval_type_id"] == "core" and report["eval_id"] == "py-1"
    metrics = report["eval_result_metrics"]
    codes = server.client.encode("a", x, reconstruction=True)
    err = x - codes.reconstruction
    assert abs(metrics["reconstruction_quality"]["mse"] - float(np.mean(err.astype(np.float64) ** 2))) < 1e-7
    np.testing.assert_allclose(report["per_token_error_norms"], np.linalg.norm(err, axis=1),
                               rtol=1e-5, atol=1e-6)
    assert metrics["sparsity"]["l0"] == pytest.approx(8.0)
    assert metrics["model_performance_preservation"]["ce_loss_score"] is None
    assert "model_performance_preservation.ce_loss_score" in report["saedict"]["absent_metrics"]
    assert len(report["eval_result_details"]) == 40


def test_evaluate_errors(pair):
    server, _ = pair
    with pytest.raises(ValueError):
        server.client.evaluate("a")
    with pytest.raises(ValueError, match="shape"):
        server.client.evaluate("a", np.zeros(16, np.float32))
    with pytest.raises(grpc.RpcError) as e:
        server.client.evaluate("a", np.zeros((3, 17), np.float32))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "activations" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        server.client.evaluate("a", corpus="nothing-here")
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
