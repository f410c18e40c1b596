# A context file written for DAMNIT, unchanged: it imports from damnit_ctx.
import numpy as np

from damnit_ctx import Cell, Group, Skip, Variable

XGM = "SA1_XTD2_XGM/DOOCS/MAIN"


@Variable(title="Trains")
def n_trains(run):
    return len(run.train_ids)


@Variable(title="XGM flux", units="uJ", summary="mean", tags=["xgm", "photons"])
def flux(run):
    """Photon flux per train."""
    return run[XGM, "pulseEnergy.photonFlux"].ndarray()


@Variable(title="Flux per train")
def flux_per_train(run, flux: "var#flux", n: "var#n_trains"):
    return Cell(float(flux.sum() / n), bold=True, background="#ff0000")


@Variable(title="All counts")
def counts(run, values: "var#n_*"):
    return sum(values.values())


@Variable(title="Run")
def run_no(run, number: "meta#run_number", proposal: "meta#proposal"):
    return number + proposal * 0


@Variable(title="Where")
def where(run, path: "meta#proposal_path"):
    return str(path)


@Variable(title="Threshold")
def threshold(run, thr: "input#threshold" = 0.5):
    return thr


@Variable(title="Background run")
def background(run, number: "meta#run_number"):
    if number == 1:
        raise Skip("run 1 has no background")
    return number


@Variable(title="Background level")
def background_level(run, bg: "var#background"):
    return bg * 2


@Variable(transient=True)
def big(run):
    return np.ones(10)


@Variable(title="Big sum", data="proc")
def big_sum(run, arr: "var#big"):
    return arr.sum()


@Group(tags="motors")
class Motor:
    offset: float = 0.0

    @Variable(title="Position", units="mm")
    def position(self, run, number: "meta#run_number"):
        return number + self.offset

    @Variable(title="Moved")
    def moved(self, run, pos: "self#position"):
        return pos > 1


sample_x = Motor(title="Sample X")
sample_y = Motor(title="Sample Y", offset=1.5, sep=" - ")
