"""Data: KuaiRand files, columnar cache, synthetic data, feature encoding, device packing."""
