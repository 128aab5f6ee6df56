from sqlalchemy.pool import QueuePool

from clientpay_connect.db import get_engine


def test_an_in_memory_database_gets_an_engine_that_answers():
    engine = get_engine({"sqlalchemy.url": "sqlite:///:memory:"})
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT 1").scalar() == 1
    engine.dispose()


def test_a_file_database_keeps_its_connections_in_a_pool(tmp_path):
    engine = get_engine({"sqlalchemy.url": f"sqlite:///{tmp_path / 'pool.sqlite'}"})
    assert isinstance(engine.pool, QueuePool)
    with engine.connect() as connection:
        mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
    assert mode == "wal"
    engine.dispose()
