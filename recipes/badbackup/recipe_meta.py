"""A canary: its backup succeeds and captures an empty dump. It must fail at backup."""

EXPECT_FAIL = "backup"
