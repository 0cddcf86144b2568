"""``python -m lcpo.gpu_check``: the module name of :mod:`lcpo.cli.gpu_check`, kept so that command works."""

from lcpo.cli.gpu_check import main

if __name__ == "__main__":
    main()
