# ReDSM5 transformer pipeline: prepare data -> HPO (k-fold CV trials) -> refit -> benchmark
#   -> selection -> final training -> held-out test report.  Logic lives in workflow_lib.
import os
import sys

from workflow_lib import config as config_lib
from workflow_lib import jobs
from workflow_lib.plan import Plan


configfile: os.path.join(workflow.basedir, "config", "config.yaml")


try:
    CFG = config_lib.resolve(config)
except config_lib.ConfigError as exc:
    sys.exit(f"Configuration error (config/config.yaml and any --configfile/--config given):\n{exc}")

if workflow.is_main_process and not workflow.dryrun:
    try:
        jobs.acquire_run_lock()
    except jobs.RunLockedError as exc:
        sys.exit(str(exc))

PLAN = Plan(CFG)
L = PLAN.layout


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/hpo.smk"
include: "rules/refit.smk"
include: "rules/select.smk"
include: "rules/final.smk"


rule all:
    input:
        early_targets(),
        final_report,
    default_target: True
