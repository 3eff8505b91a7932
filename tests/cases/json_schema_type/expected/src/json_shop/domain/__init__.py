"""The hand-written domain logic of the json_shop context.

esgen created this package once; it never changes or removes what is here.
"""
