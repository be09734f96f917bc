"""A canary: its app dies at start. cc-ci must say so within a few restarts."""

EXPECT_FAIL = "install"
