"""``python -m lcpo.train``: the module name of :mod:`lcpo.cli.train`, kept so that command works."""

from lcpo.cli.train import main

if __name__ == "__main__":
    main()
