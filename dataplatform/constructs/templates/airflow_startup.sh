#!/usr/bin/env bash
# Startup script of the lean profile's Airflow VM (rendered by dataplatform/constructs/orchestration.py).
# Installs a pinned Airflow (2.x or 3.x) with its official constraints and the Google + Beam
# providers the DAGs need, runs its services under systemd, and syncs DAGs from the artifacts
# bucket every minute. Idempotent: reruns on boot.
set -euo pipefail
AIRFLOW_VERSION="__AIRFLOW_VERSION__"
DAGS_URL="__DAGS_URL__"
AIRFLOW_HOME=/opt/airflow
UI_PORT="__UI_PORT__"

if ! id airflow >/dev/null 2>&1; then useradd --system --home-dir "$AIRFLOW_HOME" --create-home airflow; fi
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -yq python3-venv python3-dev build-essential libpq-dev

PY_VERSION="$(python3 -c 'import sys; print(f"{sys.version_info.major}.{sys.version_info.minor}")')"
CONSTRAINTS="https://raw.githubusercontent.com/apache/airflow/constraints-${AIRFLOW_VERSION}/constraints-${PY_VERSION}.txt"
if [ ! -x "$AIRFLOW_HOME/venv/bin/airflow" ] || [ "$("$AIRFLOW_HOME/venv/bin/airflow" version)" != "$AIRFLOW_VERSION" ]; then
  sudo -u airflow python3 -m venv "$AIRFLOW_HOME/venv"
  sudo -u airflow "$AIRFLOW_HOME/venv/bin/pip" install --quiet \
    "apache-airflow[google,apache-beam]==${AIRFLOW_VERSION}" --constraint "$CONSTRAINTS"
fi

install -d -o airflow -g airflow "$AIRFLOW_HOME/dags"
cat >/etc/default/airflow <<ENV
AIRFLOW_HOME=$AIRFLOW_HOME
AIRFLOW__CORE__LOAD_EXAMPLES=False
AIRFLOW__WEBSERVER__WEB_SERVER_PORT=$UI_PORT
AIRFLOW__API__AUTH_BACKENDS=airflow.api.auth.backend.session
AIRFLOW__API__PORT=$UI_PORT
ENV
sudo -u airflow env $(cat /etc/default/airflow) "$AIRFLOW_HOME/venv/bin/airflow" db migrate

# Airflow 3 splits the webserver into api-server and needs a standalone dag-processor.
if [ "${AIRFLOW_VERSION%%.*}" -ge 3 ]; then SERVICES="scheduler api-server dag-processor triggerer"; else SERVICES="scheduler webserver triggerer"; fi
for unit in $SERVICES; do
  cat >/etc/systemd/system/airflow-$unit.service <<UNIT
[Unit]
Description=Airflow $unit
After=network-online.target
[Service]
User=airflow
EnvironmentFile=/etc/default/airflow
ExecStart=$AIRFLOW_HOME/venv/bin/airflow $unit
Restart=always
RestartSec=10
[Install]
WantedBy=multi-user.target
UNIT
done

cat >/etc/systemd/system/airflow-dag-sync.service <<UNIT
[Unit]
Description=Sync Airflow DAGs from $DAGS_URL
[Service]
Type=oneshot
User=airflow
ExecStart=/usr/bin/gcloud storage rsync --recursive --delete-unmatched-destination-objects $DAGS_URL $AIRFLOW_HOME/dags
UNIT
cat >/etc/systemd/system/airflow-dag-sync.timer <<UNIT
[Unit]
Description=Sync Airflow DAGs every minute
[Timer]
OnBootSec=30
OnUnitActiveSec=60
[Install]
WantedBy=timers.target
UNIT

systemctl daemon-reload
systemctl enable --now $(for unit in $SERVICES; do printf 'airflow-%s ' "$unit"; done) airflow-dag-sync.timer
