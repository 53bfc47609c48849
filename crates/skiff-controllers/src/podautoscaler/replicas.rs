//! The HPA's arithmetic as pure functions (upstream's `replica_calculator.go` and the
//! behavior half of `horizontal.go`): replicas from per-pod resource usage (a utilization
//! ratio against requests, or an average value, with the 10% tolerance and upstream's
//! treatment of missing and unready pods), recommendation stabilization, and the scaling
//! policies that limit how fast replicas change.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Changes of the usage ratio within this fraction of 1 are ignored (upstream's
/// `--horizontal-pod-autoscaler-tolerance`, 0.1).
pub const TOLERANCE: f64 = 0.1;
/// How long after a pod starts its CPU samples may still be start-up noise
/// (`--horizontal-pod-autoscaler-cpu-initialization-period`, 5 min).
pub const CPU_INITIALIZATION_PERIOD: Duration = Duration::from_secs(300);
/// How long after start an unready pod is taken to be still starting
/// (`--horizontal-pod-autoscaler-initial-readiness-delay`, 30 s).
pub const INITIAL_READINESS_DELAY: Duration = Duration::from_secs(30);

/// One pod's resource usage sample, in milli-units (millicores for CPU).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub value: i64,
    /// Seconds since the epoch at which the sample window ended.
    pub timestamp: i64,
    /// The sample window, in seconds.
    pub window: i64,
}

/// What the calculation needs of one pod targeted by the HPA.
#[derive(Debug, Clone, PartialEq)]
pub struct PodFacts {
    pub name: String,
    /// Being deleted or `Failed`: neither counted nor sampled.
    pub ignored: bool,
    /// Phase `Pending`.
    pub pending: bool,
    /// The `Ready` condition: `None` when the pod has none, else its status and transition
    /// time (seconds since the epoch).
    pub ready: Option<(bool, i64)>,
    /// `status.startTime`, seconds since the epoch.
    pub start_time: Option<i64>,
    /// The sum of the containers' requests of the resource, in milli-units; `None` when a
    /// container requests none.
    pub request: Option<i64>,
}

/// The target of a Resource metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// `averageUtilization`: percent of the pods' requests.
    Utilization(i32),
    /// `averageValue` in milli-units.
    AverageValue(i64),
}

/// A proposal for a metric: the replica count and the current value measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proposal {
    pub replicas: i32,
    /// Average utilization in percent (for a Utilization target), else `None`.
    pub utilization: Option<i32>,
    /// The average value per pod in milli-units.
    pub average_value: i64,
}

/// The pods sorted the way upstream's `groupPods` does.
struct Groups {
    ready: i32,
    unready: Vec<String>,
    missing: Vec<String>,
    ignored: Vec<String>,
}

fn group_pods(
    pods: &[PodFacts],
    samples: &BTreeMap<String, Sample>,
    cpu: bool,
    now: i64,
) -> Groups {
    let mut groups = Groups {
        ready: 0,
        unready: Vec::new(),
        missing: Vec::new(),
        ignored: Vec::new(),
    };
    for pod in pods {
        if pod.ignored {
            groups.ignored.push(pod.name.clone());
            continue;
        }
        if pod.pending {
            groups.unready.push(pod.name.clone());
            continue;
        }
        let Some(sample) = samples.get(&pod.name) else {
            groups.missing.push(pod.name.clone());
            continue;
        };
        if cpu {
            let unready = match (pod.ready, pod.start_time) {
                (Some((ready, transition)), Some(start)) => {
                    if start + CPU_INITIALIZATION_PERIOD.as_secs() as i64 > now {
                        // Still initializing: a sample is trusted only from a ready pod and
                        // only when a whole window was taken since it became ready.
                        !ready || sample.timestamp < transition + sample.window
                    } else {
                        // Past initialization: ignored only if it never became ready.
                        !ready && start + INITIAL_READINESS_DELAY.as_secs() as i64 > transition
                    }
                }
                _ => true,
            };
            if unready {
                groups.unready.push(pod.name.clone());
                continue;
            }
        }
        groups.ready += 1;
    }
    groups
}

/// The usage ratio, the utilization (percent, for Utilization targets) and the average
/// value of the sampled pods.
fn usage_ratio(
    samples: &BTreeMap<String, i64>,
    requests: &BTreeMap<String, i64>,
    target: Target,
) -> Result<(f64, Option<i32>, i64), String> {
    match target {
        Target::Utilization(percent) => {
            let (mut used, mut requested, mut counted) = (0i64, 0i64, 0i64);
            for (pod, value) in samples {
                if let Some(request) = requests.get(pod) {
                    used += value;
                    requested += request;
                    counted += 1;
                }
            }
            if requested == 0 {
                return Err("no metrics returned matched known pods".into());
            }
            let utilization = (used * 100 / requested) as i32;
            Ok((
                f64::from(utilization) / f64::from(percent),
                Some(utilization),
                used / counted,
            ))
        }
        Target::AverageValue(target) => {
            if samples.is_empty() {
                return Err("no metrics returned matched known pods".into());
            }
            let average = samples.values().sum::<i64>() / samples.len() as i64;
            Ok((average as f64 / target as f64, None, average))
        }
    }
}

/// The replicas a Resource metric asks for (upstream's `GetResourceReplicas` and
/// `GetRawResourceReplicas`). `now` is seconds since the epoch.
pub fn resource_replicas(
    current: i32,
    target: Target,
    cpu: bool,
    pods: &[PodFacts],
    samples: &BTreeMap<String, Sample>,
    now: i64,
) -> Result<Proposal, String> {
    if pods.is_empty() {
        return Err("no pods returned by selector while calculating replica count".into());
    }
    let groups = group_pods(pods, samples, cpu, now);
    let mut values: BTreeMap<String, i64> = samples
        .iter()
        .filter(|(pod, _)| !groups.ignored.contains(pod) && !groups.unready.contains(pod))
        .filter(|(pod, _)| pods.iter().any(|p| &&p.name == pod))
        .map(|(pod, sample)| (pod.clone(), sample.value))
        .collect();
    if values.is_empty() {
        return Err("did not receive metrics for targeted pods (pods might be unready)".into());
    }
    let mut requests = BTreeMap::new();
    if let Target::Utilization(_) = target {
        for pod in pods {
            match pod.request {
                Some(request) => requests.insert(pod.name.clone(), request),
                None => return Err(format!("missing request for resource in pod {}", pod.name)),
            };
        }
    }
    let (ratio, utilization, average_value) = usage_ratio(&values, &requests, target)?;
    let proposal = |replicas| Proposal {
        replicas,
        utilization,
        average_value,
    };
    let scale_up_with_unready = !groups.unready.is_empty() && ratio > 1.0;
    if !scale_up_with_unready && groups.missing.is_empty() {
        if (1.0 - ratio).abs() <= TOLERANCE {
            return Ok(proposal(current));
        }
        return Ok(proposal((ratio * f64::from(groups.ready)).ceil() as i32));
    }
    // Missing pods are assumed to use what would least move the result: on a scale-down their
    // full request (or the target, when it is higher), on a scale-up nothing.
    for pod in &groups.missing {
        let assumed = if ratio < 1.0 {
            match target {
                Target::Utilization(percent) => {
                    requests.get(pod).copied().unwrap_or(0) * i64::from(percent.max(100)) / 100
                }
                Target::AverageValue(value) => value,
            }
        } else {
            0
        };
        values.insert(pod.clone(), assumed);
    }
    if scale_up_with_unready {
        for pod in &groups.unready {
            values.insert(pod.clone(), 0);
        }
    }
    let (new_ratio, _, _) = usage_ratio(&values, &requests, target)?;
    if (1.0 - new_ratio).abs() <= TOLERANCE
        || (ratio < 1.0 && new_ratio > 1.0)
        || (ratio > 1.0 && new_ratio < 1.0)
    {
        return Ok(proposal(current));
    }
    let replicas = (new_ratio * values.len() as f64).ceil() as i32;
    if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
        return Ok(proposal(current));
    }
    Ok(proposal(replicas))
}

/// How a direction's policies combine (`selectPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    Max,
    Min,
    Disabled,
}

/// One scaling policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Pods { value: i32, period: Duration },
    Percent { value: i32, period: Duration },
}

impl Policy {
    fn period(&self) -> Duration {
        match self {
            Policy::Pods { period, .. } | Policy::Percent { period, .. } => *period,
        }
    }
}

/// One direction's rules (`scaleUp` or `scaleDown`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub stabilization: Duration,
    pub select: Select,
    pub policies: Vec<Policy>,
}

impl Rules {
    /// Upstream's default scale-up: no stabilization, at most max(100%, 4 pods) per 15 s.
    pub fn default_up() -> Rules {
        Rules {
            stabilization: Duration::ZERO,
            select: Select::Max,
            policies: vec![
                Policy::Pods {
                    value: 4,
                    period: Duration::from_secs(15),
                },
                Policy::Percent {
                    value: 100,
                    period: Duration::from_secs(15),
                },
            ],
        }
    }

    /// Upstream's default scale-down: a 300 s window, at most 100% per 15 s.
    pub fn default_down() -> Rules {
        Rules {
            stabilization: Duration::from_secs(300),
            select: Select::Max,
            policies: vec![Policy::Percent {
                value: 100,
                period: Duration::from_secs(15),
            }],
        }
    }
}

/// A past recommendation or scale change, and when it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timed {
    pub at: Instant,
    pub replicas: i32,
}

/// The stabilized recommendation: never above the lowest recommendation of the scale-up
/// window, nor below the highest of the scale-down window, counting `desired` itself. Gives
/// a condition reason and message when stabilization changed the recommendation.
pub fn stabilize(
    current: i32,
    desired: i32,
    recommendations: &[Timed],
    up: &Rules,
    down: &Rules,
    now: Instant,
) -> (i32, Option<(&'static str, &'static str)>) {
    let within = |at: Instant, window: Duration| now.saturating_duration_since(at) < window;
    let mut up_limit = desired;
    let mut down_limit = desired;
    for recommendation in recommendations {
        if within(recommendation.at, up.stabilization) {
            up_limit = up_limit.min(recommendation.replicas);
        }
        if within(recommendation.at, down.stabilization) {
            down_limit = down_limit.max(recommendation.replicas);
        }
    }
    let stabilized = current.max(up_limit).min(down_limit);
    let note = if stabilized == desired {
        None
    } else if stabilized > desired {
        Some((
            "ScaleDownStabilized",
            "recent recommendations were higher than current one, applying the highest recent recommendation",
        ))
    } else {
        Some((
            "ScaleUpStabilized",
            "recent recommendations were lower than current one, applying the lowest recent recommendation",
        ))
    };
    (stabilized, note)
}

/// Replicas added (positive) or removed (negative) by the changes within `period`.
fn changed_within(events: &[Timed], period: Duration, now: Instant) -> i32 {
    events
        .iter()
        .filter(|e| now.saturating_duration_since(e.at) < period)
        .map(|e| e.replicas)
        .sum()
}

/// The most replicas the scale-up policies allow now, given the changes made recently.
pub fn scale_up_limit(current: i32, events: &[Timed], rules: &Rules, now: Instant) -> i32 {
    if rules.select == Select::Disabled {
        return current;
    }
    let proposals = rules.policies.iter().map(|policy| {
        let start = current - changed_within(events, policy.period(), now).max(0);
        match policy {
            Policy::Pods { value, .. } => start + value,
            Policy::Percent { value, .. } => {
                (f64::from(start) * (1.0 + f64::from(*value) / 100.0)).ceil() as i32
            }
        }
    });
    let limit = match rules.select {
        Select::Min => proposals.min(),
        _ => proposals.max(),
    };
    limit.unwrap_or(current)
}

/// The fewest replicas the scale-down policies allow now, given the changes made recently.
pub fn scale_down_limit(current: i32, events: &[Timed], rules: &Rules, now: Instant) -> i32 {
    if rules.select == Select::Disabled {
        return current;
    }
    let proposals = rules.policies.iter().map(|policy| {
        let start = current - changed_within(events, policy.period(), now).min(0);
        match policy {
            Policy::Pods { value, .. } => start - value,
            Policy::Percent { value, .. } => {
                (f64::from(start) * (1.0 - f64::from(*value) / 100.0)) as i32
            }
        }
    });
    // `Max` selects the policy allowing the biggest change, i.e. the fewest replicas.
    let limit = match rules.select {
        Select::Min => proposals.max(),
        _ => proposals.min(),
    };
    limit.unwrap_or(current)
}

/// The outcome of applying the bounds and rate limits to a stabilized recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub replicas: i32,
    /// Whether the bounds or policies changed the recommendation (`ScalingLimited`).
    pub limited: bool,
    pub reason: &'static str,
    pub message: &'static str,
}

/// Brings a recommendation within `[min, max]` and the policies' rate limits (upstream's
/// `convertDesiredReplicasWithBehaviorRate`).
#[allow(clippy::too_many_arguments)]
pub fn limit_rate(
    current: i32,
    desired: i32,
    min: i32,
    max: i32,
    up: &Rules,
    down: &Rules,
    events: &[Timed],
    now: Instant,
) -> Limited {
    let within = Limited {
        replicas: desired,
        limited: false,
        reason: "DesiredWithinRange",
        message: "the desired count is within the acceptable range",
    };
    if desired > current {
        let rate = scale_up_limit(current, events, up, now).max(current);
        let (allowed, reason, message) = if max > rate {
            (
                rate,
                "ScaleUpLimit",
                "the desired replica count is increasing faster than the maximum scale rate",
            )
        } else {
            (
                max,
                "TooManyReplicas",
                "the desired replica count is more than the maximum replica count",
            )
        };
        if desired > allowed {
            return Limited {
                replicas: allowed,
                limited: true,
                reason,
                message,
            };
        }
    } else if desired < current {
        let rate = scale_down_limit(current, events, down, now).min(current);
        let (allowed, reason, message) = if min < rate {
            (
                rate,
                "ScaleDownLimit",
                "the desired replica count is decreasing faster than the maximum scale rate",
            )
        } else {
            (
                min,
                "TooFewReplicas",
                "the desired replica count is less than the minimum replica count",
            )
        };
        if desired < allowed {
            return Limited {
                replicas: allowed,
                limited: true,
                reason,
                message,
            };
        }
    }
    within
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000;

    /// A running pod, ready since long ago, requesting `request` millicores.
    fn pod(name: &str, request: i64) -> PodFacts {
        PodFacts {
            name: name.into(),
            ignored: false,
            pending: false,
            ready: Some((true, NOW - 900)),
            start_time: Some(NOW - 1000),
            request: Some(request),
        }
    }

    fn samples(values: &[(&str, i64)]) -> BTreeMap<String, Sample> {
        values
            .iter()
            .map(|(name, value)| {
                (
                    (*name).to_owned(),
                    Sample {
                        value: *value,
                        timestamp: NOW - 10,
                        window: 30,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn resource_replicas_table() {
        let unready = PodFacts {
            ready: Some((false, NOW - 5)),
            start_time: Some(NOW - 10),
            ..pod("u", 1000)
        };
        let pending = PodFacts {
            pending: true,
            ..pod("p", 1000)
        };
        let deleting = PodFacts {
            ignored: true,
            ..pod("d", 1000)
        };
        // (name, current replicas, target, pods, samples, expected replicas)
        type Case<'a> = (
            &'a str,
            i32,
            Target,
            Vec<PodFacts>,
            Vec<(&'a str, i64)>,
            i32,
        );
        let cases: Vec<Case> = vec![
            (
                "twice the target doubles",
                2,
                Target::Utilization(50),
                vec![pod("a", 1000), pod("b", 1000)],
                vec![("a", 1000), ("b", 1000)],
                4,
            ),
            (
                "within tolerance keeps",
                3,
                Target::Utilization(50),
                vec![pod("a", 1000), pod("b", 1000), pod("c", 1000)],
                vec![("a", 540), ("b", 520), ("c", 500)],
                3,
            ),
            (
                "a quarter of the target quarters",
                4,
                Target::Utilization(80),
                vec![
                    pod("a", 1000),
                    pod("b", 1000),
                    pod("c", 1000),
                    pod("d", 1000),
                ],
                vec![("a", 200), ("b", 200), ("c", 200), ("d", 200)],
                1,
            ),
            (
                "average value",
                2,
                Target::AverageValue(100),
                vec![pod("a", 0), pod("b", 0)],
                vec![("a", 300), ("b", 300)],
                6,
            ),
            (
                // The unready pod counts as using nothing: 2000/3000 of 50% → 133% → 4.
                "scale-up with an unready pod counts it as idle",
                3,
                Target::Utilization(50),
                vec![pod("a", 1000), pod("b", 1000), unready.clone()],
                vec![("a", 1000), ("b", 1000), ("u", 1000)],
                4,
            ),
            (
                // Scale-down: the missing pod counts as using its full request, which
                // brings the ratio to (100+100+1000)/3000 = 40% of 50% → 0.8 → 3 of 3.
                "scale-down with a missing pod assumes its request",
                3,
                Target::Utilization(50),
                vec![pod("a", 1000), pod("b", 1000), pod("m", 1000)],
                vec![("a", 100), ("b", 100)],
                3,
            ),
            (
                // Scale-up: the missing pod counts as idle: (1000+1000+0)/3000 → 133% → 4.
                "scale-up with a missing pod assumes it idle",
                3,
                Target::Utilization(50),
                vec![pod("a", 1000), pod("b", 1000), pod("m", 1000)],
                vec![("a", 1000), ("b", 1000)],
                4,
            ),
            (
                // The deleting pod is left out; the pending one counts as idle on a
                // scale-up: 1000/2000 of 50% is on target.
                "pending pods count as idle, deleting ones not at all",
                2,
                Target::Utilization(50),
                vec![pod("a", 1000), pending, deleting],
                vec![("a", 1000), ("d", 5000)],
                2,
            ),
        ];
        for (name, current, target, pods, values, expected) in cases {
            let got = resource_replicas(current, target, true, &pods, &samples(&values), NOW)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(got.replicas, expected, "{name}");
        }
    }

    #[test]
    fn resource_replicas_errors() {
        assert_eq!(
            resource_replicas(1, Target::Utilization(50), true, &[], &samples(&[]), NOW),
            Err("no pods returned by selector while calculating replica count".into())
        );
        assert_eq!(
            resource_replicas(
                1,
                Target::Utilization(50),
                true,
                &[pod("a", 100)],
                &samples(&[]),
                NOW
            ),
            Err("did not receive metrics for targeted pods (pods might be unready)".into())
        );
        let no_request = PodFacts {
            request: None,
            ..pod("a", 0)
        };
        assert!(
            resource_replicas(
                1,
                Target::Utilization(50),
                true,
                &[no_request],
                &samples(&[("a", 10)]),
                NOW
            )
            .is_err()
        );
    }

    #[test]
    fn utilization_is_reported() {
        let got = resource_replicas(
            2,
            Target::Utilization(50),
            false,
            &[pod("a", 200), pod("b", 200)],
            &samples(&[("a", 100), ("b", 140)]),
            NOW,
        )
        .unwrap();
        assert_eq!(got.utilization, Some(60));
        assert_eq!(got.average_value, 120);
        assert_eq!(got.replicas, 3);
    }

    fn at(now: Instant, seconds_ago: u64, replicas: i32) -> Timed {
        Timed {
            at: now - Duration::from_secs(seconds_ago),
            replicas,
        }
    }

    #[test]
    fn stabilization_table() {
        let now = Instant::now() + Duration::from_secs(10_000);
        let (up, down) = (Rules::default_up(), Rules::default_down());
        // Scale-down waits for the highest recommendation of the last 300 s.
        let recent = [at(now, 100, 8), at(now, 50, 6)];
        assert_eq!(
            stabilize(10, 4, &recent, &up, &down, now),
            (
                8,
                Some((
                    "ScaleDownStabilized",
                    "recent recommendations were higher than current one, applying the highest recent recommendation"
                ))
            )
        );
        // Old recommendations no longer hold it back.
        let old = [at(now, 400, 8)];
        assert_eq!(stabilize(10, 4, &old, &up, &down, now), (4, None));
        // Scale-up is immediate by default.
        assert_eq!(stabilize(2, 6, &recent, &up, &down, now), (6, None));
        // A scale-up window holds at the lowest recent recommendation.
        let slow_up = Rules {
            stabilization: Duration::from_secs(60),
            ..Rules::default_up()
        };
        let (got, note) = stabilize(2, 6, &[at(now, 30, 3)], &slow_up, &down, now);
        assert_eq!(got, 3);
        assert_eq!(note.map(|n| n.0), Some("ScaleUpStabilized"));
    }

    #[test]
    fn policies_table() {
        let now = Instant::now() + Duration::from_secs(10_000);
        let (up, down) = (Rules::default_up(), Rules::default_down());
        // max(100%, 4 pods): from 1 → 5, from 10 → 20.
        assert_eq!(scale_up_limit(1, &[], &up, now), 5);
        assert_eq!(scale_up_limit(10, &[], &up, now), 20);
        // 3 added 5 s ago count against the period: start 2 → max(4, 6) = 6.
        assert_eq!(scale_up_limit(5, &[at(now, 5, 3)], &up, now), 6);
        // but not after the period.
        assert_eq!(scale_up_limit(5, &[at(now, 20, 3)], &up, now), 10);
        // 100% down per 15 s allows going to 0.
        assert_eq!(scale_down_limit(8, &[], &down, now), 0);
        let one_pod_down = Rules {
            policies: vec![Policy::Pods {
                value: 1,
                period: Duration::from_secs(60),
            }],
            ..Rules::default_down()
        };
        assert_eq!(scale_down_limit(8, &[], &one_pod_down, now), 7);
        assert_eq!(
            scale_down_limit(7, &[at(now, 10, -1)], &one_pod_down, now),
            7
        );
        let disabled = Rules {
            select: Select::Disabled,
            ..Rules::default_up()
        };
        assert_eq!(scale_up_limit(3, &[], &disabled, now), 3);
        let min_up = Rules {
            select: Select::Min,
            ..Rules::default_up()
        };
        assert_eq!(scale_up_limit(10, &[], &min_up, now), 14);
    }

    #[test]
    fn limit_rate_table() {
        let now = Instant::now() + Duration::from_secs(10_000);
        let (up, down) = (Rules::default_up(), Rules::default_down());
        let got = limit_rate(1, 20, 1, 10, &up, &down, &[], now);
        assert_eq!(
            (got.replicas, got.limited, got.reason),
            (5, true, "ScaleUpLimit")
        );
        let got = limit_rate(8, 20, 1, 10, &up, &down, &[], now);
        assert_eq!((got.replicas, got.reason), (10, "TooManyReplicas"));
        let got = limit_rate(8, 1, 3, 10, &up, &down, &[], now);
        assert_eq!((got.replicas, got.reason), (3, "TooFewReplicas"));
        let got = limit_rate(4, 6, 1, 10, &up, &down, &[], now);
        assert_eq!(
            (got.replicas, got.limited, got.reason),
            (6, false, "DesiredWithinRange")
        );
    }
}
