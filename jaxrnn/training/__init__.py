"""Training: the numbers' checks and memory budget, the compiled ensemble trainer, grids, held-out evaluation.

budget    host-side memory and size checks (no JAX), run before anything compiles
train     TrainConfig, Hparams, `fit`: one compiled program per shape, members vmapped, chunked and sharded
grid      heterogeneous ensembles: a study grid as one program
evaluate  held-out trials, the success rule, Wilson intervals
"""
