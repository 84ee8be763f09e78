"""Report stage: draw the key figures (reports/glance/), render reports/report.md and reports/report.html from the
tracked metrics, figures, params.yaml and references.yaml, and collect every stage's wall time into
metrics/stage_times.json."""
from pathlib import Path

from latentspace import paths
from latentspace.core.stage import StageRun, stage
from latentspace.report.build import write_report, write_stage_times


@stage(__doc__, name="report")
def main(run: StageRun) -> str:
    write_report(Path("."), Path(paths.REPORT_MD), Path(paths.REPORT_HTML))
    record = write_stage_times(Path("."), Path(paths.STAGE_TIMES), run.name, run.seconds)
    return f"{paths.REPORT_HTML}; the stages took {record['total_seconds']:.0f} s in all"


if __name__ == "__main__":
    main()
