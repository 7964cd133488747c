"""Energy RMSE, force RMSE and force L4 error of one model on the held-out test labels."""
from confselect.jobs import log_to, write_json
from confselect.metrics import test_set_errors
from confselect.calculator import spk_calculator
from confselect.training import labelled_frames

log_to(snakemake)
frames, failed = labelled_frames(snakemake.input.labels)
calc = spk_calculator(snakemake.input.model, snakemake.params.cutoff_A)


def predict(atoms):
    atoms = atoms.copy()
    atoms.calc = calc
    return atoms.get_potential_energy(), atoms.get_forces()


errors = test_set_errors(predict, frames)
errors["n_test_label_failures"] = len(failed)
write_json(snakemake.output[0], errors)
