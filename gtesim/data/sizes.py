"""The sizes of the generated datasets (the `data.synthetic.size` and `kuairec_size` knobs)."""

# Synthetic dataset sizes (the `data.synthetic.size` knob). Interaction counts follow the real
# KuaiRand versions: Pure 1.44M standard + 1.19M random rows over 27,285 users and 7,583 videos;
# 1K 11.7M rows over 1,000 users and ~4.4M videos; 27K 322M rows over 27,285 users and ~32M videos.
SYNTHETIC_SIZES = {
    "tiny": dict(n_users=64, n_videos=150, n_interactions=6_000, random_fraction=0.3),
    "mini": dict(n_users=400, n_videos=800, n_interactions=40_000, random_fraction=0.45),
    "small": dict(n_users=2_000, n_videos=3_000, n_interactions=200_000, random_fraction=0.45),
    "pure": dict(n_users=27_285, n_videos=7_583, n_interactions=2_622_668,
                 random_fraction=0.452),
    "1k": dict(n_users=1_000, n_videos=400_000, n_interactions=11_713_045,
               random_fraction=0.04),
    "27k": dict(n_users=27_285, n_videos=32_038_725, n_interactions=322_278_385,
                random_fraction=0.0037),
}
# KuaiRec-format synthetic sizes: a fully observed matrix (env users x env videos) and sparse
# production-ranked pretraining logs over more users and videos (KuaiRec 2.0: 1,411 x 3,327;
# big matrix 12.5M rows over 7,176 users and 10,728 videos).
SYNTHETIC_KUAIREC_SIZES = {
    "tiny": dict(n_env_users=40, n_env_videos=60, n_users=120, n_videos=200,
                 n_pretrain=6_000),
    "small": dict(n_env_users=600, n_env_videos=1_200, n_users=3_000, n_videos=4_000,
                  n_pretrain=300_000),
    "full": dict(n_env_users=1_411, n_env_videos=3_327, n_users=7_176, n_videos=10_728,
                 n_pretrain=12_530_806),
}


def size_name(data_config) -> str:
  """The generated dataset's size knob of a data config."""
  return (data_config.synthetic.kuairec_size if data_config.name == "synthetic-kuairec"
          else data_config.synthetic.size)
