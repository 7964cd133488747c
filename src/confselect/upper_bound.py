"""The upper-bound arm (``sweep.full``): one model per seed trained on the whole pool (or a configured large
n) under the selections' protocol, reported beside them and never ranked among them."""

#: Its method name in paths, the summary and the verdict.
FULL_ARM = "full"
