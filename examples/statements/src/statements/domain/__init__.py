"""The hand-written domain logic of the statements context.

esgen created this package once; it never changes or removes what is here.
"""
