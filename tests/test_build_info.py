"""nearzero.build_info() reports how the package was built (SPEC §5)."""

import nearzero as nz


def test_build_info_fields():
    info = nz.build_info()
    assert info["version"] == nz.__version__
    assert isinstance(info["cuda_built"], bool)
    assert isinstance(info["cuda_architectures"], list)
    assert isinstance(info["cuda_devices"], int) and info["cuda_devices"] >= 0
    assert isinstance(info["openmp"], bool)
    if info["cuda_built"]:
        assert any("90" in a for a in info["cuda_architectures"])
    else:
        assert info["cuda_architectures"] == [] and info["cuda_devices"] == 0


def test_build_info_cuda_runtime():
    info = nz.build_info()
    if info["cuda_built"]:
        assert isinstance(info["cuda_runtime"], str) and info["cuda_runtime"]
    else:
        assert info["cuda_runtime"] is None
