from zope.interface import Interface


class IMailDelivery(Interface):
    def send(message):
        """Hand a pyramid_mailer Message to the mail system; raise on failure."""
