"""Report stage: render reports/report.md and reports/report.html from the tracked metrics and figures of
all three studies, and collect every stage's wall time into metrics/stage_times.json."""
import argparse
from pathlib import Path

from latentspace.core.stage import Timer, stage_main
from latentspace.report import STAGE_TIMES, write_report, write_stage_times


@stage_main
def main() -> None:
    argparse.ArgumentParser(description=__doc__).parse_args()
    with Timer() as timer:
        times = write_report(Path("."), Path("reports/report.md"), Path("reports/report.html"))
    write_stage_times(Path(STAGE_TIMES), times, timer.seconds)


if __name__ == "__main__":
    main()
