"""Processing: the ETL image repository, the launcher function and scheduled launches, one per file.

Every launch is decided by the launcher function (workloads/launcher): landing events reach it
through Eventarc, every other run request (Cloud Scheduler, Airflow, the ETL's follow-ups)
through the follow-up Cloud Tasks queue (constructs/followups.py). Only the function's
PIPELINES_JSON holds the launch settings, so no second copy can drift.

- `image_repository.py`: `ImageRepository`
- `launch_contract.py`: `etl_launch_config`, one pipeline's entry of PIPELINES_JSON
- `launcher_package.py`: the function's source as deployed (`packaged_launcher_source`)
- `launcher.py`: `LauncherSpec`, `Launcher`
- `scheduled_launches.py`: `ScheduledLaunchSpec`, `ScheduledLaunches`
"""

from dataplatform.constructs.processing.image_repository import ImageRepository
from dataplatform.constructs.processing.launch_contract import etl_launch_config
from dataplatform.constructs.processing.launcher import Launcher, LauncherSpec
from dataplatform.constructs.processing.scheduled_launches import ScheduledLaunches, ScheduledLaunchSpec

__all__ = ["ImageRepository", "Launcher", "LauncherSpec", "ScheduledLaunchSpec", "ScheduledLaunches", "etl_launch_config"]
