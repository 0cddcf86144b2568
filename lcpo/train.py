"""``python -m lcpo.train`` (console script ``lcpo-train``): :mod:`lcpo.cli.train`, its command line checked first
(:mod:`lcpo.cli.preflight`), so that a refused start does not wait for the training stack to import."""


def main() -> None:
    from lcpo.cli.preflight import preflight

    preflight("train", "lcpo-train")
    from lcpo.cli.train import main as run

    run()


if __name__ == "__main__":
    main()
