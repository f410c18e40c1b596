import extra_data
import numpy as np

from runtable.testing import mock_proposal as mp
from runtable.testing import run_start


def test_runs_open_with_extra_data_and_differ(data_root):
    flux = {}
    for run in (1, 2):
        dc = extra_data.open_run(data_root.proposal, run, data="raw")
        flux[run] = dc["SA1_XTD2_XGM/DOOCS/MAIN", "pulseEnergy.photonFlux"].ndarray()
        assert dc.train_timestamps()[0] == np.datetime64(run_start(run), "s")
    assert flux[1].std() > 0
    assert abs(flux[1].mean() - flux[2].mean()) > 1e-3


def test_same_seed_same_values(tmp_path):
    a = mp.make_proposal(tmp_path / "a", 1, runs=[5], proc=False)
    b = mp.make_proposal(tmp_path / "b", 1, runs=[5], proc=False)
    import h5py

    name = next(a.raw_dir(5).glob("*DA01-S00000.h5")).name
    with h5py.File(a.raw_dir(5) / name) as fa, h5py.File(b.raw_dir(5) / name) as fb:
        np.testing.assert_array_equal(fa[mp.XGM_FLUX][:], fb[mp.XGM_FLUX][:])
        np.testing.assert_array_equal(fa[mp.CAMERA_IMAGE][:], fb[mp.CAMERA_IMAGE][:])


def test_proc_data_is_filled(data_root):
    dc = extra_data.open_run(data_root.proposal, 2, data="proc")
    frames = dc["SPB_DET_AGIPD1M-1/CORR/0CH0:output", "image.data"][:1].ndarray()
    assert abs(frames[: mp.PROC_FILLED_FRAMES].mean() - 12) < 0.1
