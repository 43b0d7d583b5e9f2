# nbgrader's configuration for students working in this repository (`./course lab`).
# The "Validate" button of JupyterLab reads this file from the folder the server
# was started in. It executes the whole notebook, demos included, so it needs far
# more than nbgrader's default of 30 s per cell; and a cell that still runs out of
# time must fail the validation instead of being interrupted and skipped (which
# would let the validation report success for a notebook that did not run).
c = get_config()  # noqa: F821
c.Execute.timeout = 600
c.Execute.interrupt_on_timeout = False
