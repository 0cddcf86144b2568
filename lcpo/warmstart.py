"""``python -m lcpo.warmstart``: the module name of :mod:`lcpo.cli.warmstart`, kept so that command works."""

from lcpo.cli.warmstart import main

if __name__ == "__main__":
    main()
