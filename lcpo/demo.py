"""``python -m lcpo.demo``: the module name of :mod:`lcpo.cli.demo`, kept so that command works."""

from lcpo.cli.demo import main

if __name__ == "__main__":
    main()
