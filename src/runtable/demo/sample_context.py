# A sample runtable context file. Each @Variable is one column of the run table; each
# run is one row. It runs on the mock SPB runs that `runtable demo` creates.
import numpy as np

from runtable.context import Cell, Group, Skip, Variable

XGM = "SA1_XTD2_XGM/DOOCS/MAIN"
XGM_FAST = "SPB_XTD9_XGM/DOOCS/MAIN:output"
CAMERA = "SPB_IRU_CAM/CAM/SIDEMIC:daqOutput"
AGIPD_PROC = "SPB_DET_AGIPD1M-1/CORR/0CH0:output"


@Variable(title="XGM/Photon flux", units="µJ", summary="mean")
def xgm_flux(run):
    """Photon flux measured by the XGM, per train."""
    return run[XGM, "pulseEnergy.photonFlux"].xarray()


@Variable(title="XGM/Intensity per train", units="µJ")
def xgm_intensity(run):
    """Train-resolved fast XGM intensity (sum over pulses): shown as a trendline."""
    return run[XGM_FAST, "data.intensityTD"].xarray().sum(dim="dim_0")


@Variable(title="XGM/Flux stability", units="%")
def flux_stability(run, flux: "var#xgm_flux"):
    """Relative standard deviation of the photon flux; bold when above 2 %."""
    rsd = 100 * float(flux.std() / flux.mean())
    return Cell(rsd, bold=rsd > 2)


@Variable(title="Camera/Mean image")
def camera_mean(run):
    """Side microscope image averaged over the run: shown as a thumbnail."""
    return run[CAMERA, "data.image.pixels"].xarray().mean(dim="trainId")


@Variable(title="Camera/Spot profile")
def camera_profile(run, image: "var#camera_mean"):
    """Horizontal profile of the mean image as an interactive plotly figure."""
    import plotly.graph_objects as go

    profile = np.asarray(image).sum(axis=0)
    return go.Figure(go.Scatter(y=profile, mode="lines"))


@Variable(title="Trains")
def n_trains(run):
    return len(run.train_ids)


@Variable(title="Run number")
def run_number(run, number: "meta#run_number"):
    return number


@Variable(title="Detector/Mean signal", data="proc", units="keV")
def agipd_mean(run):
    """Mean of the first calibrated AGIPD frames: computed when proc data arrives."""
    frames = run[AGIPD_PROC, "image.data"][:1].ndarray()[:4]
    return float(frames.mean())


@Variable(title="Sample")
def sample(run, number: "meta#run_number"):
    """Which sample was in the beam (from the run number, for the demo)."""
    if number % 4 == 0:
        raise Skip("no sample in the beam (background run)")
    return ["lysozyme", "thaumatin", "insulin"][number % 3]


@Group
class Motor:
    """A group: one set of variables per motor instance below."""

    axis: int = 0

    @Variable(title="Position", units="mm")
    def position(self, run, number: "meta#run_number"):
        return round(0.5 * number + self.axis, 3)

    @Variable(title="Moved", units="mm")
    def moved(self, run, pos: "self#position"):
        return abs(pos) > 1


sample_x = Motor(title="Sample X", axis=0)
sample_y = Motor(title="Sample Y", axis=1)
