"""The local alarm evaluator over metrics stored in moto: state, SNS message, retrain event."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from mlops.local.alarm_evaluator import AlarmEvaluator, AlarmState
from mlops.shared.alarm_specs import DIM_MODEL, DIM_VERSION, NAMESPACE, alarm_specs


def test_gap_series_fires_metric_gap_alarm_and_delivers_the_event(aws_stack, churn_spec):
    topic = aws_stack.env["MLOPS_ALARM_TOPIC_ARN"]
    queue = aws_stack.sqs.create_queue(QueueName="people")["QueueUrl"]
    arn = aws_stack.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    aws_stack.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    delivered = []
    specs = [s for s in alarm_specs(churn_spec) if s.name in ("MetricGap", "MonitorHeartbeat")]
    evaluator = AlarmEvaluator(
        aws_stack.cloudwatch, aws_stack.sns, topic, specs, "churn", "local", lambda t, e: delivered.append(e)
    )
    evaluator.create_alarms()
    start = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
    for hour, (gap, beat) in enumerate([(0.01, 1), (0.02, 1), (0.09, 1), (0.11, 1)]):
        ts = start + timedelta(hours=hour, minutes=5)
        aws_stack.cloudwatch.put_metric_data(
            Namespace=NAMESPACE,
            MetricData=[
                {
                    "MetricName": "MetricGap",
                    "Dimensions": [{"Name": DIM_MODEL, "Value": "churn"}],
                    "Timestamp": ts,
                    "Value": gap,
                },
                {
                    "MetricName": "MonitorHeartbeat",
                    "Dimensions": [{"Name": DIM_MODEL, "Value": "churn"}],
                    "Timestamp": ts,
                    "Value": beat,
                },
            ],
        )

    first = evaluator.evaluate_all(start + timedelta(hours=3))  # periods 0,1,2: one breaching
    assert {t.alarm_name: t.new for t in first} == {
        "local-churn-MetricGap": AlarmState.OK,
        "local-churn-MonitorHeartbeat": AlarmState.OK,
    }
    second = evaluator.evaluate_all(start + timedelta(hours=4))  # periods 1,2,3: two breaching
    assert [(t.alarm_name, t.new) for t in second] == [("local-churn-MetricGap", AlarmState.ALARM)]
    alarm = aws_stack.cloudwatch.describe_alarms(AlarmNames=["local-churn-MetricGap"])["MetricAlarms"][0]
    assert alarm["StateValue"] == "ALARM" and alarm["Threshold"] == churn_spec.monitoring.max_metric_gap

    event = delivered[-1]
    assert event["detail-type"] == "CloudWatch Alarm State Change"
    assert event["detail"]["state"]["value"] == "ALARM"
    received = aws_stack.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    alarms = [json.loads(json.loads(m["Body"])["Message"]) for m in received]
    assert any(a["AlarmName"] == "local-churn-MetricGap" and a["NewStateValue"] == "ALARM" for a in alarms)

    # The monitor stops: two silent periods are a heartbeat alarm.
    third = evaluator.evaluate_all(start + timedelta(hours=7))
    assert ("local-churn-MonitorHeartbeat", AlarmState.ALARM) in [(t.alarm_name, t.new) for t in third]


def test_a_gap_published_at_the_evaluation_time_counts_at_once(aws_stack, churn_spec):
    # Given hourly MetricGap figures stamped at the monitor's run times: fine, then two breaching
    specs = [s for s in alarm_specs(churn_spec) if s.name == "MetricGap"]
    evaluator = AlarmEvaluator(aws_stack.cloudwatch, aws_stack.sns, None, specs, "churn", "local")
    start = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
    evaluator.create_alarms(start - timedelta(hours=1))
    for hour, gap in enumerate([0.01, 0.09, 0.09]):
        aws_stack.cloudwatch.put_metric_data(
            Namespace=NAMESPACE,
            MetricData=[
                {
                    "MetricName": "MetricGap",
                    "Dimensions": [{"Name": DIM_MODEL, "Value": "churn"}],
                    "Timestamp": start + timedelta(hours=hour),
                    "Value": gap,
                }
            ],
        )
    # When the alarm is evaluated right after the second breaching figure was published
    changes = evaluator.evaluate_all(start + timedelta(hours=2))
    # Then it is in ALARM now, as CloudWatch's next once-a-minute evaluation would be, not a period later
    assert [(t.alarm_name, t.new) for t in changes] == [("local-churn-MetricGap", AlarmState.ALARM)]
    assert changes[0].values == [0.01, 0.09, 0.09]


def test_silence_before_the_stack_started_is_no_alarm(aws_stack, churn_spec):
    specs = [s for s in alarm_specs(churn_spec) if s.name == "MonitorHeartbeat"]
    evaluator = AlarmEvaluator(aws_stack.cloudwatch, aws_stack.sns, None, specs, "churn", "local")
    started = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
    evaluator.create_alarms(at=started)
    assert evaluator.evaluate_all(started) == []  # no whole period since the start yet
    later = evaluator.evaluate_all(started + timedelta(hours=3))  # three silent periods since
    assert [(t.alarm_name, t.new) for t in later] == [("local-churn-MonitorHeartbeat", AlarmState.ALARM)]


def test_labels_drying_up_for_a_whole_window_alarms_and_silence_counts_as_dry(aws_stack, churn_spec):
    (spec,) = [s for s in alarm_specs(churn_spec) if s.name == "LabelsDryingUp"]
    evaluator = AlarmEvaluator(aws_stack.cloudwatch, aws_stack.sns, None, [spec], "churn", "local")
    start = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
    evaluator.create_alarms(at=start)
    window = spec.evaluation_periods
    assert window * spec.period_s == churn_spec.monitoring.window_hours * 3600
    minimum = churn_spec.monitoring.min_labels

    def labels(hour: int, count: int) -> None:
        aws_stack.cloudwatch.put_metric_data(
            Namespace=NAMESPACE,
            MetricData=[
                {
                    "MetricName": "LabelCount",
                    "Dimensions": [{"Name": DIM_MODEL, "Value": "churn"}],
                    "Timestamp": start + timedelta(hours=hour, minutes=5),
                    "Value": count,
                }
            ],
        )

    # Given enough labels in the first run, then a window's worth of runs with too few:
    labels(0, minimum)
    for hour in range(1, window + 1):
        labels(hour, minimum - 1)
    # one good run in the window keeps it OK; a whole window below the minimum alarms.
    assert [t.new for t in evaluator.evaluate_all(start + timedelta(hours=window))] == [AlarmState.OK]
    assert [t.new for t in evaluator.evaluate_all(start + timedelta(hours=window + 1))] == [AlarmState.ALARM]
    labels(window + 1, minimum)
    assert [t.new for t in evaluator.evaluate_all(start + timedelta(hours=window + 2))] == [AlarmState.OK]
    # No LabelCount at all (no report for the champion) for a whole window is just as dry.
    silent = evaluator.evaluate_all(start + timedelta(hours=2 * window + 2))
    assert [t.new for t in silent] == [AlarmState.ALARM]


def test_a_retired_versions_figures_do_not_feed_the_champions_alarm(aws_stack, churn_spec):
    # Given the champion's series (ModelName only) healthy, and a retired v1's per-version series
    # (ModelName + ModelVersion) far over the threshold, as the monitor publishes them
    specs = [s for s in alarm_specs(churn_spec) if s.name == "PredictionDrift"]
    evaluator = AlarmEvaluator(aws_stack.cloudwatch, aws_stack.sns, None, specs, "churn", "local")
    evaluator.create_alarms()
    start = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
    for hour in range(3):
        ts = start + timedelta(hours=hour, minutes=5)
        aws_stack.cloudwatch.put_metric_data(
            Namespace=NAMESPACE,
            MetricData=[
                {
                    "MetricName": "PredictionDrift",
                    "Dimensions": [{"Name": DIM_MODEL, "Value": "churn"}],
                    "Timestamp": ts,
                    "Value": 0.01,
                },
                {
                    "MetricName": "PredictionDrift",
                    "Dimensions": [
                        {"Name": DIM_MODEL, "Value": "churn"},
                        {"Name": DIM_VERSION, "Value": "1"},
                    ],
                    "Timestamp": ts,
                    "Value": 0.9,
                },
            ],
        )
    # When the alarm is evaluated over those periods
    changes = evaluator.evaluate_all(start + timedelta(hours=3))
    # Then it sees exactly the champion's series, as CloudWatch matches dimension sets exactly
    assert [(t.alarm_name, t.new) for t in changes] == [("local-churn-PredictionDrift", AlarmState.OK)]
    assert changes[0].values[-2:] == [0.01, 0.01]
