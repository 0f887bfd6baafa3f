# ReDSM5 transformer pipeline: prepare data -> HPO (k-fold CV trials) -> refit -> benchmark
#   -> selection -> final training -> held-out test report.  Logic lives in workflow_lib.
import os
import sys

from workflow_lib import config as config_lib
from workflow_lib import devices
from workflow_lib.pipeline import jobs
from workflow_lib.pipeline.plan import Plan
from workflow_lib.pipeline.runmode import forced_rules_hint, prepare_force_tokens


configfile: os.path.join(workflow.basedir, "config", "config.yaml")
report: "rules/report/workflow.rst"  # snakemake --report report.html: its front page (captions in rules/report/)


try:
    CFG = config_lib.resolve(config)
except config_lib.ConfigError as exc:
    sys.exit(f"Configuration error (config/config.yaml and any --configfile/--config given):\n{exc}")

if workflow.is_main_process and not workflow.dryrun:
    try:
        jobs.acquire_run_lock()
    except jobs.RunLockedError as exc:
        sys.exit(str(exc))

PLAN = Plan(CFG, main_process=workflow.is_main_process)
LAYOUT = PLAN.layout  # every results path (workflow_lib.persistence.paths.Layout)

if workflow.is_main_process:
    # stages whose run mode is force_new are redone, with what depends on them (as --forcerun)
    for stage in prepare_force_tokens(CFG, touch=not workflow.dryrun):
        print(f"run.mode.{stage} is force_new: every {forced_rules_hint(stage)} job is redone", file=sys.stderr)
    # never more GPU jobs at once than GPUs (--resources gpu=N overrides)
    if "gpu" not in workflow.global_resources:
        workflow.register_resource("gpu", devices.gpu_count())


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/hpo.smk"
include: "rules/refit.smk"
include: "rules/select.smk"
include: "rules/final.smk"
include: "rules/predict.smk"


rule all:
    input:
        early_targets(),
        final_report,
    default_target: True
