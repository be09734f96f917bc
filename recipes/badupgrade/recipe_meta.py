"""A canary: 1.0.0 works, 1.1.0's update fails and swarm rolls it back."""

EXPECT_FAIL = "upgrade"
