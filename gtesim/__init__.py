"""gtesim: simulate A/B-test bias from data training loops on replayed KuaiRand logs."""

__version__ = "0.1.0"
