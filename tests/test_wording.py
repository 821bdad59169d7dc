from drivesim.wording import counted


def test_counts_read_as_english():
    assert counted(1, "frame") == "1 frame"
    assert counted(0, "shard") == "0 shards"
    assert counted(60_000, "frame") == "60,000 frames"
    assert counted(2, "loader worker") == "2 loader workers"
    assert counted(3, "child", "children") == "3 children" and counted(1, "child", "children") == "1 child"
