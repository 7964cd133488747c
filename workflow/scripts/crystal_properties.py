"""Crystal observables of one calculator (validation.crystal): a trained model's (input model) or the
teacher's; equation of state, elastic constants, phonons and vacancy formation energy (confselect.crystal)."""
import sys

from confselect.crystal import crystal_properties
from confselect.jobs import log_to, write_json
from confselect.structures import build_structure, unit_cell

log_to(snakemake)
system = snakemake.config["systems"][snakemake.wildcards.system]  # runnable: potential files by path
p = snakemake.params
if "model" in snakemake.input.keys():
    import torch

    from confselect.calculator import SchNetCalculator
    from confselect.devices import resolve_device

    device = resolve_device(snakemake.config["validation"]["device"], "validation.device")
    torch.set_num_threads(snakemake.threads)
    calc = SchNetCalculator(snakemake.input.model, cutoff_A=p.cutoff_A, device=device)
    who = f"model on {device}"
else:
    from confselect.classical import teacher_calculator

    calc, who = teacher_calculator(system, keep_alive=True), "teacher"
structure = system["structure"]
settings = {k: v for k, v in p.crystal.items() if k != "observables"}
result = crystal_properties(build_structure(system), calc, structure["lattice_constant_A"],
                            primitive=unit_cell(system["species"], structure, primitive=True),
                            settings=settings, observables=("eos", *p.crystal["observables"]))
write_json(snakemake.output[0], result)
eos = result["eos"]
if eos is None:
    print(f"{who}: {result['skipped']['eos']}", file=sys.stderr, flush=True)
else:
    print(f"{who}: a0 = {eos['lattice_constant_A']:.4f} A, B = {eos['bulk_modulus_GPa']:.1f} GPa, "
          f"{result['wall_s']:.1f} s", file=sys.stderr, flush=True)
