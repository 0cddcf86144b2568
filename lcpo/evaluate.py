"""``python -m lcpo.evaluate``: the module name of :mod:`lcpo.cli.evaluate`, kept so that command works."""

from lcpo.cli.evaluate import main

if __name__ == "__main__":
    main()
