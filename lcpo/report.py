"""``python -m lcpo.report``: the module name of :mod:`lcpo.cli.report`, kept so that command works."""

from lcpo.cli.report import main

if __name__ == "__main__":
    main()
