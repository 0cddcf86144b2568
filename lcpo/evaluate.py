"""``python -m lcpo.evaluate`` (console script ``lcpo-evaluate``): :mod:`lcpo.cli.evaluate`, its command line checked first
(:mod:`lcpo.cli.preflight`), so that a refused start does not wait for the models to import."""


def main() -> None:
    from lcpo.cli.preflight import preflight

    preflight("evaluate", "lcpo-evaluate")
    from lcpo.cli.evaluate import main as run

    run()


if __name__ == "__main__":
    main()
