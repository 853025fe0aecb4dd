"""Hyperparameter tuning: the ``tune:`` block of ``modelport.yaml`` run with Optuna.

``runner.Tuner`` runs a study's trials (``command`` or ``function``, see
``command``/``function``) in Optuna's storage beside the registry (``storage``) and
registers the best trial (``register``); ``report`` reads a study back. A training
script run as a trial can use ``protocol``'s helpers::

    from modelport.tuning import protocol
    params = protocol.params()            # {"C": 0.3, ...}
    protocol.report(epoch, val_accuracy)  # for the pruner
    protocol.log_metrics(accuracy=0.93)   # or write tune.metrics_file

Nothing here imports Optuna until a study is opened.
"""
