"""The alert rules and the Grafana dashboard shipped in the package (issue 17, "Alerts"): ``promtool check rules`` and
``promtool test rules`` (Debian's prometheus package), the dashboard's structure, and every metric either names is one
that /metrics really exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

import kuzet
from kuzet.installation import Installation
from kuzet.services.backup import make_backup
from kuzet.services.recording.metrics import render
from kuzet.store.bus import MemoryBus
from tests.tls_support import make_certificate

MONITORING = Path(kuzet.__file__).parent / "monitoring"
RULES = MONITORING / "prometheus-alerts.yml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
METRIC = re.compile(r"\bkuzet_[a-z_]+\b")

# promtool's unit tests: alerts fire when they should, and only then.
RULE_TESTS = """
rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'kuzet_camera_state{{instance="a", camera="7", state="offline"}}'
        values: '0 0 1x20'
      - series: 'kuzet_camera_state{{instance="a", camera="8", state="offline"}}'
        values: '0x22'
      - series: 'kuzet_audit_anchor_ok{{instance="a"}}'
        values: '1x40'
      - series: 'kuzet_index_failing_seconds{{instance="a"}}'
        values: '0 0 0 0 60 120 180 240 300 360'
    alert_rule_test:
      - eval_time: 8m
        alertname: KuzetCameraOffline
        exp_alerts: []
      - eval_time: 14m
        alertname: KuzetCameraOffline
        exp_alerts:
          - exp_labels: {{severity: warning, instance: a, camera: "7"}}
      - eval_time: 20m
        alertname: KuzetAuditChainNotVerified
        exp_alerts: []
      - eval_time: 8m
        alertname: KuzetIndexWritesFailing
        exp_alerts:
          - exp_labels: {{severity: critical, instance: a}}
  - interval: 1m
    input_series:
      - series: 'kuzet_backup_last_success_timestamp_seconds{{instance="a"}}'
        values: '7200x1900'
    alert_rule_test:
      - eval_time: 24h
        alertname: KuzetBackupTooOld
        exp_alerts: []
      - eval_time: 30h
        alertname: KuzetBackupTooOld
        exp_alerts:
          - exp_labels: {{severity: critical, instance: a}}
"""


def _promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.fail("promtool is missing: apt-get install prometheus (Makefile SYSTEM_PACKAGES)")
    return found


def test_alert_rules_pass_promtool(tmp_path: Path) -> None:
    checked = subprocess.run([_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    assert {"KuzetDiskFillingFasterThanRetentionFrees", "KuzetCameraOffline", "KuzetRecorderBehindRealTime",
            "KuzetIndexWritesFailing", "KuzetAuditChainNotVerified", "KuzetCertificateExpiring",
            "KuzetBackupTooOld"} <= alerts
    # the unit tests check when alerts fire (expr, for, labels); the annotations' wording is left out of them
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    bare = tmp_path / "rules.yml"
    bare.write_text(yaml.safe_dump(rules))
    tests = tmp_path / "rules-test.yml"
    tests.write_text(RULE_TESTS.format(rules=json.dumps(str(bare))))
    tested = subprocess.run([_promtool(), "test", "rules", str(tests)], capture_output=True, text=True, timeout=60)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_dashboard_structure() -> None:
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dash["uid"] and dash["title"] and isinstance(dash["schemaVersion"], int)
    assert [v["name"] for v in dash["templating"]["list"]] == ["datasource"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) and ids
    for panel in dash["panels"]:
        assert panel["type"] in ("timeseries", "stat") and panel["title"]
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and grid["h"] > 0
        assert panel["targets"] and panel["datasource"]["uid"] == "${datasource}"
        for target in panel["targets"]:
            assert target["refId"] and METRIC.search(target["expr"]), target


def test_every_metric_the_rules_and_dashboard_use_is_exported(inst: Installation, tmp_path: Path) -> None:
    cert, _key, _ca = make_certificate(tmp_path / "tls")
    inst.settings.http.tls_cert = cert
    inst.settings.backup.dir = tmp_path / "backups"
    make_backup(inst, inst.settings.backup.dir, "a passphrase for the test")
    inst.running.bus = MemoryBus()
    exported = set(re.findall(r"^# HELP (kuzet_[a-z_]+)", render(inst).decode(), re.M))
    used = set(METRIC.findall(RULES.read_text())) | set(METRIC.findall(DASHBOARD.read_text()))
    assert used and used <= exported, used - exported
    text = render(inst).decode()
    assert "kuzet_audit_anchor_ok 1.0" in text
    assert re.search(r"^kuzet_backup_last_success_timestamp_seconds [1-9]", text, re.M)
    assert re.search(r"^kuzet_tls_certificate_expiry_timestamp_seconds [1-9]", text, re.M)
